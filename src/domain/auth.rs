//! Who may do what: the three roles and what an agent token is confined to.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: jobs, reports, reading.
    Admin,
    /// Reports and reads its own jobs only (those whose agent_id_responsible is its agent).
    Agent,
    /// Reads everything, changes nothing.
    Viewer,
}

impl Role {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Agent, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == s)
    }
}

/// The holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Agent(String),
    Viewer,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Admin => Role::Admin,
            Principal::Agent(_) => Role::Agent,
            Principal::Viewer => Role::Viewer,
        }
    }

    /// The agent an agent token is confined to.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Principal::Agent(a) => Some(a),
            _ => None,
        }
    }

    /// Whether it may see and report for a job run by `job_agent`.
    pub fn may_access(&self, job_agent: &str) -> bool {
        self.agent().is_none_or(|a| a == job_agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_reaches_only_its_own_jobs() {
        let agent = Principal::Agent("lyon-1".into());
        assert!(agent.may_access("lyon-1"));
        assert!(!agent.may_access("paris-1"));
        assert!(!agent.may_access("lyon-1 "));
        assert!(Principal::Admin.may_access("paris-1"));
        assert!(Principal::Viewer.may_access("paris-1"));
    }

    #[test]
    fn role_names_round_trip() {
        for r in [Role::Admin, Role::Agent, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
