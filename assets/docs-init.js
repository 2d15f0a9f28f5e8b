// Swagger UI bootstrap for /docs. It lives in its own file, not in an inline
// <script>, so the pages work under a Content-Security-Policy without
// 'unsafe-inline' for scripts. Loaded with `defer` after swagger-ui-bundle.js.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  // null: no "valid" badge, so the spec is never sent to the public validator.
  validatorUrl: null,
  deepLinking: true,
  persistAuthorization: true,
  // Never take the spec URL or other settings from the page's query string.
  queryConfigEnabled: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  docExpansion: "list",
  displayRequestDuration: true,
  filter: true,
});
