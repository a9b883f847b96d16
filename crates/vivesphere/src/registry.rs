//! The registry of targets, in the manner of Loki's modules: one list of kebab-case names.
//! `all` is just every entry. This is the only place that knows every service, and the only
//! place that decides what shares a process.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::bail;
use platform::config::{Catalog, ConfigError, LayeredConfig, PlatformSettings};
use platform::target::Target;
use serde_json::{Map, Value};

/// The name that runs every target in one process.
pub const ALL: &str = "all";

/// Every target, in start order. Configuration comes first, so that in one process the
/// others start on the central settings it holds.
pub fn targets() -> Vec<Arc<dyn Target>> {
    vec![
        Arc::new(configuration::ConfigurationService),
        Arc::new(authentication::AuthenticationService),
        Arc::new(secure_bot_data::SecureBotDataService),
        Arc::new(log_service::LoggingService),
        Arc::new(bot_manager::BotManagerService),
        Arc::new(gateway::GatewayService),
        Arc::new(console::ConsoleService),
    ]
}

/// Targets that only run when named, never in `all`: test and demo support.
pub fn named_only_targets() -> Vec<Arc<dyn Target>> {
    vec![Arc::new(fake_x::FakeXService)]
}

fn every_target() -> Vec<Arc<dyn Target>> {
    let mut all = targets();
    all.extend(named_only_targets());
    all
}

/// The valid `--target` names.
pub fn target_names() -> Vec<&'static str> {
    let mut names = vec![ALL];
    names.extend(every_target().iter().map(|t| t.info().name));
    names
}

/// The targets a `--target` value selects (`None` or `all`: every service).
pub fn select(name: Option<&str>) -> anyhow::Result<Vec<Arc<dyn Target>>> {
    match name {
        None | Some(ALL) => Ok(targets()),
        Some(name) => match every_target().into_iter().find(|t| t.info().name == name) {
            Some(target) => Ok(vec![target]),
            None => bail!(
                "unknown target {name:?}; valid targets: {}",
                target_names().join(", ")
            ),
        },
    }
}

/// The defaults layer: the platform's sections and every target's.
pub fn config_defaults() -> Value {
    let mut map = match PlatformSettings::defaults() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for target in every_target() {
        let info = target.info();
        map.insert(info.config_section.to_string(), info.config_defaults());
    }
    Value::Object(map)
}

/// Every top-level config section somebody owns.
pub fn known_sections() -> Vec<&'static str> {
    let mut sections = PlatformSettings::SECTIONS.to_vec();
    sections.extend(every_target().iter().map(|t| t.info().config_section));
    sections
}

/// Checks a whole configuration as start-up does: no unknown section, every section of the
/// right shape.
pub fn check_config(config: &LayeredConfig) -> Result<PlatformSettings, ConfigError> {
    config.check_sections(&known_sections())?;
    for target in every_target() {
        target.info().check_config(config)?;
    }
    PlatformSettings::from_config(config)
}

/// Every key that holds a secret: the platform's and every target's fields typed `Secret`.
pub fn secret_keys() -> BTreeSet<String> {
    let mut keys = PlatformSettings::secret_keys();
    for target in every_target() {
        keys.extend(target.info().secret_keys());
    }
    keys
}

/// Every service's declared settings and the typed check, for the Configuration service and
/// every config client.
pub fn catalog() -> Catalog {
    let mut specs = PlatformSettings::declared_settings();
    let mut services = Vec::new();
    for target in targets() {
        let info = target.info();
        services.push((info.name.to_string(), info.config_section.to_string()));
        specs.extend(info.declared_settings());
    }
    Catalog::new(
        services,
        PlatformSettings::SECTIONS.map(String::from).to_vec(),
        specs,
        secret_keys(),
        config_defaults(),
        |config| check_config(config).map(|_| ()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_every_field_typed_secret() {
        assert_eq!(
            secret_keys().into_iter().collect::<Vec<_>>(),
            vec![
                "authentication.encryption_key",
                "authentication.initial_admin_password",
                "database.url",
                "logging.webhooks.encryption_key",
                "secure_bot_data.keks",
            ]
        );
    }

    #[test]
    fn unknown_target_error_lists_every_valid_name() {
        let err = select(Some("bots")).err().unwrap().to_string();
        for name in target_names() {
            assert!(err.contains(name), "{err} should list {name}");
        }
    }

    #[test]
    fn the_fake_x_runs_only_when_named() {
        let all: Vec<_> = select(None)
            .unwrap()
            .iter()
            .map(|t| t.info().name)
            .collect();
        assert!(!all.contains(&fake_x::NAME));
        assert_eq!(
            select(Some(fake_x::NAME)).unwrap()[0].info().name,
            fake_x::NAME
        );
    }

    #[test]
    fn all_selects_every_target_once() {
        let names: Vec<_> = select(Some(ALL))
            .unwrap()
            .iter()
            .map(|t| t.info().name)
            .collect();
        assert_eq!(names.len(), targets().len());
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn every_declared_setting_exists_in_the_defaults_and_is_declared_once() {
        let defaults = config_defaults();
        let mut seen = std::collections::BTreeSet::new();
        for spec in catalog().specs() {
            assert!(seen.insert(spec.key), "{} declared twice", spec.key);
            let mut node = &defaults;
            for part in spec.key.split('.') {
                node = node
                    .get(part)
                    .unwrap_or_else(|| panic!("{} is not a config key", spec.key));
            }
            assert!(
                spec.kind.check(node).is_ok(),
                "the default of {} is outside its declared range",
                spec.key
            );
        }
    }

    #[test]
    fn the_gateway_route_table_is_exactly_the_services_prefixes() {
        let served: Vec<(&str, &str)> = targets()
            .iter()
            .filter_map(|t| t.info().route_prefix.map(|prefix| (prefix, t.info().name)))
            .collect();
        let routed: Vec<(&str, &str)> = gateway::routes::ROUTES
            .iter()
            .map(|route| (route.prefix, route.service))
            .collect();
        let (mut served, mut routed) = (served, routed);
        served.sort();
        routed.sort();
        assert_eq!(served, routed);
    }

    #[test]
    fn config_sections_do_not_collide_with_platform_sections() {
        let sections = known_sections();
        let mut unique = sections.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), sections.len());
    }
}
