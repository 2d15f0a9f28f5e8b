//! `GET /api/v1/companies`: each company's jobs counted by state, its worst state and the
//! URL of its badge, so that the badge can be found and shared.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Reader;
use super::error::{ApiError, ValidationError};
use super::input::{page_only, PageQuery};
use super::{badges, paged_from, ApiState};
use crate::service::companies::{self, Company};

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/companies", get(list_companies))
}

/// A company as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompanyOut {
    #[serde(flatten)]
    pub company: Company,
    /// A shields-style SVG of the company's worst state over all its jobs, shareable without
    /// a token. Null for an agent token: the badge shows jobs beyond its own.
    #[schema(required = true)]
    pub badge_url: Option<String>,
}

/// Companies, with their jobs' states and badge
///
/// Every company with a job, ordered by name: how many jobs it has, how many are in each
/// state, the worst state among them (failed > late > pending > ok; paused only when all
/// are) and the URL of its badge. An agent token sees the companies of its own jobs,
/// counted over those alone, and no badge URL. `X-Total-Count` carries the total.
#[utoipa::path(
    get,
    path = "/api/v1/companies",
    tag = "status",
    params(PageQuery),
    responses(
        (status = 200, description = "The companies", body = [CompanyOut],
            headers(("X-Total-Count" = i64, description = "Companies in all"))),
        (status = 422, description = "Invalid query", body = ValidationError),
    )
)]
pub(super) async fn list_companies(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let page = page_only(raw.as_deref())?;
    let now = state.clock.now();
    let agent = caller.agent().is_some();
    let list = state
        .db
        .run(move |conn| Ok::<_, ApiError>(companies::list(conn, &caller, now)?))
        .await?;
    let shown: Vec<CompanyOut> = list
        .into_iter()
        .map(|company| CompanyOut {
            badge_url: (!agent)
                .then(|| badges::company_badge_url(&state.badge_secret, &company.company_name)),
            company,
        })
        .collect();
    Ok(paged_from(shown, page))
}
