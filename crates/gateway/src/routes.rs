//! The one route table: which service answers each prefix, and which paths need no token at
//! the edge. The gateway target proxies by it; the Kong configuration is written from it.

/// One service's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Everything under this prefix goes to `service`.
    pub prefix: &'static str,
    /// The target name of the service (and of its Kubernetes Service).
    pub service: &'static str,
    /// Paths under the prefix that pass without a token (the service checks whatever
    /// credential they carry itself: passwords, refresh tokens, client secrets).
    pub public: &'static [&'static str],
    /// Answers under the prefix carry tokens or secrets (RFC 6749 §5.1): every one of them,
    /// whoever produces it, is `Cache-Control: no-store`.
    pub no_store: bool,
    /// The edge checks a bearer token on every path that is not public. The console's pages
    /// carry a session cookie instead, which the console checks itself.
    pub token_at_edge: bool,
}

/// Paths every service serves without a token: its health, its OpenAPI document and docs.
pub const PUBLIC_EVERYWHERE: [&str; 3] = ["/health", "/openapi.json", "/docs"];

pub const ROUTES: &[Route] = &[
    Route {
        prefix: "/api/v1/auth",
        service: "authentication",
        public: &[
            "/login",
            "/login/mfa",
            "/refresh",
            "/password",
            "/validate",
            "/token",
            "/revoke",
            "/introspect",
            "/.well-known/jwks.json",
            "/revocations",
        ],
        no_store: true,
        token_at_edge: true,
    },
    Route {
        prefix: "/api/v1/bots",
        service: "bot-manager",
        public: &[],
        no_store: false,
        token_at_edge: true,
    },
    Route {
        prefix: "/api/v1/config",
        service: "configuration",
        public: &[],
        no_store: false,
        token_at_edge: true,
    },
    Route {
        prefix: "/api/v1/logs",
        service: "logging",
        public: &[],
        no_store: false,
        token_at_edge: true,
    },
    Route {
        prefix: "/api/v1/botdata",
        service: "secure-bot-data",
        public: &[],
        no_store: true,
        token_at_edge: true,
    },
    Route {
        prefix: "/console",
        service: "console",
        public: &[],
        no_store: false,
        token_at_edge: false,
    },
];

/// The prefixes whose answers are never stored by a cache.
pub fn no_store_prefixes() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .filter(|route| route.no_store)
        .map(|route| route.prefix)
}

/// The route whose prefix `path` is under.
pub fn route_for(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| {
        path == route.prefix
            || path
                .strip_prefix(route.prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

impl Route {
    /// Whether `path` (under this route's prefix) passes without a token.
    pub fn is_public(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(self.prefix) else {
            return false;
        };
        if !self.token_at_edge {
            return true;
        }
        PUBLIC_EVERYWHERE.contains(&rest)
            || rest.starts_with("/docs/")
            || self.public.contains(&rest)
    }

    /// Every public path, in full.
    pub fn public_paths(&self) -> Vec<String> {
        PUBLIC_EVERYWHERE
            .iter()
            .chain(self.public)
            .map(|rest| format!("{}{rest}", self.prefix))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_route_by_whole_segments() {
        assert_eq!(
            route_for("/api/v1/bots/list").unwrap().service,
            "bot-manager"
        );
        assert_eq!(route_for("/api/v1/bots").unwrap().service, "bot-manager");
        assert!(route_for("/api/v1/botsx").is_none());
        assert_eq!(
            route_for("/api/v1/botdata/x").unwrap().service,
            "secure-bot-data"
        );
        assert!(route_for("/health").is_none());
    }

    #[test]
    fn only_declared_paths_are_public() {
        let auth = route_for("/api/v1/auth/login").unwrap();
        assert!(auth.is_public("/api/v1/auth/login"));
        assert!(auth.is_public("/api/v1/auth/.well-known/jwks.json"));
        assert!(auth.is_public("/api/v1/auth/health"));
        assert!(!auth.is_public("/api/v1/auth/me"));
        assert!(!auth.is_public("/api/v1/auth/login/../me"));
        let bots = route_for("/api/v1/bots/list").unwrap();
        assert!(!bots.is_public("/api/v1/bots/list"));
        assert!(bots.is_public("/api/v1/bots/openapi.json"));
        assert!(bots.is_public("/api/v1/bots/docs/index.html"));
    }
}
