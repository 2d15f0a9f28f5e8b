//! What the running service shares between its parts: the handlers' state and the narrower
//! state of the token middleware, built once by `Application::build`.

use crate::api::auth::AuthState;
use crate::api::ApiState;

#[derive(Clone, Debug, axum::extract::FromRef)]
pub struct AppState {
    pub api: ApiState,
    pub auth: AuthState,
}
