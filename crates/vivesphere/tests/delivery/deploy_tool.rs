//! infrastructure/deploy/vivesphere-deploy decides what to do next from what the cluster
//! answers. A stand-in kubectl (`standin-kubectl`) renders with the real kubectl, records
//! every other call and plays back a successful rollout, one that misses its deadline, a
//! failed migration; a stand-in smoke test passes or fails. Each test asserts what the tool
//! did: which digest runs, what it recorded, what it never touched.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::shown;

fn repo() -> PathBuf {
    crate::render::repo_root()
}

fn digest(fill: char) -> String {
    format!("sha256:{}", fill.to_string().repeat(64))
}

/// The real kubectl, when it has Kustomize components (v4+); otherwise the tests skip.
fn real_kubectl() -> Option<PathBuf> {
    if !crate::render::kubectl_works() {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
}

/// One cluster, as the stand-in plays it, and the tool run against it.
struct Cluster {
    dir: tempfile::TempDir,
    real_kubectl: PathBuf,
}

/// How the stand-ins answer one run of the tool.
#[derive(Default)]
struct Plays {
    /// Digests whose rollout misses its deadline.
    bad_digests: Vec<String>,
    /// Digests whose canary analysis aborts (production's Argo Rollouts).
    bad_canaries: Vec<String>,
    migration_fails: bool,
    smoke_fails: bool,
}

impl Cluster {
    fn new() -> Option<Self> {
        let Some(real_kubectl) = real_kubectl() else {
            println!("=== SKIPPED: no kubectl with Kustomize v4+ to render with");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        for sub in ["bin", "state"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(
            repo().join("crates/vivesphere/tests/delivery/standin-kubectl"),
            dir.path().join("bin/kubectl"),
        )
        .unwrap();
        let smoke = dir.path().join("bin/smoke");
        std::fs::write(
            &smoke,
            "#!/bin/sh\necho \"smoke $1\" >> \"$STANDIN_STATE/smoke.log\"\n\
             [ \"$STANDIN_SMOKE\" != fail ] || { echo 'smoke: FAILED: login answered 502' >&2; exit 1; }\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&smoke, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(Self { dir, real_kubectl })
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, args: &[&str], plays: Plays) -> Output {
        let _ = std::fs::remove_file(self.state().join("calls.jsonl"));
        let mut path = vec![self.dir.path().join("bin")];
        // kubernetes-validate for --dry-run, where .ci/k8s-check installed it.
        path.push(repo().join("target/ci-venv/bin"));
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        Command::new(repo().join("infrastructure/deploy/vivesphere-deploy"))
            .args(args)
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("STANDIN_STATE", self.state())
            .env("STANDIN_REAL_KUBECTL", &self.real_kubectl)
            .env("STANDIN_BAD_DIGESTS", plays.bad_digests.join(","))
            .env("STANDIN_BAD_CANARIES", plays.bad_canaries.join(","))
            .env(
                "STANDIN_MIGRATION",
                if plays.migration_fails {
                    "Failed"
                } else {
                    "Complete"
                },
            )
            .env(
                "STANDIN_SMOKE",
                if plays.smoke_fails { "fail" } else { "pass" },
            )
            .env("VIVESPHERE_SMOKE", self.dir.path().join("bin/smoke"))
            .env("DEPLOY_ACTOR", "release-bot")
            .env("DEPLOY_COMMIT", "0123456789abcdef0123456789abcdef01234567")
            .env("DEPLOY_APPROVED_BY", "ada")
            .env("GITHUB_STEP_SUMMARY", self.dir.path().join("summary.md"))
            .env_remove("GITHUB_ACTOR")
            .env_remove("GITHUB_SHA")
            .output()
            .unwrap()
    }

    fn deploy(&self, env: &str, digest: &str, plays: Plays) -> Output {
        self.run(&["deploy", env, digest], plays)
    }

    /// A release that goes through: the one before the case under test.
    fn deploy_ok(&self, env: &str, digest: &str) {
        let output = self.deploy(env, digest, Plays::default());
        assert!(output.status.success(), "{}", shown(&output));
    }

    /// kubectl's calls in the last run, apart from rendering.
    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The digest the Deployments were last applied with.
    fn running(&self) -> String {
        std::fs::read_to_string(self.state().join("running")).unwrap_or_default()
    }

    fn record(&self, key: &str) -> String {
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(self.state().join("record.json")).unwrap(),
        )
        .unwrap();
        record["data"][key].as_str().unwrap().to_string()
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary.md")).unwrap_or_default()
    }

    fn smoke_runs(&self) -> usize {
        std::fs::read_to_string(self.state().join("smoke.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// The kinds each `apply` of the last run sent, in order (the record apart).
fn applied_kinds(calls: &[Value]) -> Vec<Vec<String>> {
    calls
        .iter()
        .filter(|call| call["call"] == "apply" && call.get("objects").is_some())
        .map(|call| {
            call["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|object| object[0].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn a_release_migrates_first_then_rolls_out_then_is_smoke_tested_and_recorded() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let a = digest('a');
    let output = cluster.deploy("staging", &a, Plays::default());
    assert!(output.status.success(), "{}", shown(&output));
    let calls = cluster.calls();
    let applies = applied_kinds(&calls);
    assert_eq!(applies.len(), 2, "{calls:#?}");
    // First everything but what runs pods, with the migration Job; nothing of it runs the
    // new image but the Job.
    assert!(applies[0].contains(&"Job".to_string()), "{:?}", applies[0]);
    assert!(
        applies[0].contains(&"ConfigMap".to_string()),
        "{:?}",
        applies[0]
    );
    assert!(
        !applies[0].contains(&"Deployment".to_string()),
        "{:?}",
        applies[0]
    );
    // Then the rest, without the Job.
    assert!(
        applies[1].contains(&"Deployment".to_string()),
        "{:?}",
        applies[1]
    );
    assert!(
        applies[1].contains(&"StatefulSet".to_string()),
        "{:?}",
        applies[1]
    );
    assert!(!applies[1].contains(&"Job".to_string()), "{:?}", applies[1]);
    // Every image of the project's is pinned by digest, and every object is in staging's
    // namespace.
    for call in calls.iter().filter(|call| call.get("objects").is_some()) {
        for image in call["images"].as_array().unwrap() {
            assert_eq!(
                image.as_str().unwrap(),
                format!("ghcr.io/vivesphere/vivesphere@{a}")
            );
        }
        for object in call["objects"].as_array().unwrap() {
            if object[2].is_string() {
                assert_eq!(object[2], "vivesphere-staging", "{object}");
            }
        }
    }
    let order: Vec<String> = calls
        .iter()
        .map(|call| call["call"].as_str().unwrap().to_string())
        .collect();
    let position = |prefix: &str| {
        order
            .iter()
            .position(|call| call.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {order:#?}"))
    };
    assert!(position("get job vivesphere-migrate") < position("rollout status deployment"));
    assert!(
        !order.iter().any(|call| call.starts_with("get rollout")),
        "staging runs no canaries: {order:#?}"
    );
    assert!(position("rollout status statefulset") < order.len() - 1);
    assert_eq!(cluster.running(), a);
    assert_eq!(cluster.smoke_runs(), 1);
    assert_eq!(cluster.record("digest"), a);
    assert_eq!(cluster.record("previousDigest"), "");
    assert_eq!(cluster.record("deployedBy"), "release-bot");
    assert_eq!(cluster.record("approvedBy"), "ada");
    assert_eq!(
        cluster.record("commit"),
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert!(cluster.summary().contains("deployed and smoke-tested"));

    let status = cluster.run(&["status", "staging"], Plays::default());
    let printed = shown(&status);
    assert!(status.status.success(), "{printed}");
    for expected in [
        a.as_str(),
        "release-bot",
        "0123456789abcdef",
        "ada",
        "deployed sha256:aaaa",
    ] {
        assert!(
            printed.contains(expected),
            "status lacks {expected}: {printed}"
        );
    }
}

#[test]
fn a_rollout_that_misses_its_deadline_rolls_back_to_the_previous_digest() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let (a, b) = (digest('a'), digest('b'));
    cluster.deploy_ok("production", &a);
    let output = cluster.deploy(
        "production",
        &b,
        Plays {
            bad_digests: vec![b.clone()],
            ..Plays::default()
        },
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert_eq!(cluster.running(), a, "the previous digest runs again");
    assert_eq!(cluster.record("digest"), a);
    assert!(
        cluster
            .record("history")
            .contains(&format!("rolled back {b} -> {a}"))
    );
    assert_eq!(
        cluster.smoke_runs(),
        1,
        "no smoke test of a release that did not roll out"
    );
    let summary = cluster.summary();
    assert!(
        summary.contains("a deployment missed its 600s deadline"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("rolled back to `{a}`")),
        "{summary}"
    );
    // The rollback ran no migration Job (the schema stays; the previous release works on it).
    let last_run = cluster.calls();
    let jobs_applied = applied_kinds(&last_run)
        .iter()
        .filter(|kinds| kinds.contains(&"Job".to_string()))
        .count();
    assert_eq!(
        jobs_applied, 1,
        "one Job, the failed release's: {last_run:#?}"
    );
}

#[test]
fn a_failed_smoke_test_rolls_back_and_a_person_can_roll_back_by_hand() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let (a, b, c) = (digest('a'), digest('b'), digest('c'));
    cluster.deploy_ok("staging", &a);
    cluster.deploy_ok("staging", &b);
    let failed = cluster.deploy(
        "staging",
        &c,
        Plays {
            smoke_fails: true,
            ..Plays::default()
        },
    );
    assert_eq!(failed.status.code(), Some(1), "{}", shown(&failed));
    assert_eq!(cluster.running(), b);
    assert_eq!(cluster.record("digest"), b);
    assert_eq!(cluster.record("previousDigest"), a);
    assert!(cluster.summary().contains("the smoke test failed"));

    // By hand: back to a, then nothing earlier is left.
    let back = cluster.run(&["rollback", "staging"], Plays::default());
    assert!(back.status.success(), "{}", shown(&back));
    assert_eq!(cluster.running(), a);
    assert_eq!(cluster.record("digest"), a);
    assert!(cluster.record("history").contains("by hand"));
    let none = cluster.run(&["rollback", "staging"], Plays::default());
    assert_eq!(none.status.code(), Some(2), "{}", shown(&none));
    assert!(
        shown(&none).contains("no earlier release"),
        "{}",
        shown(&none)
    );
    assert_eq!(cluster.running(), a);
}

#[test]
fn a_failed_migration_stops_before_any_pod_switches() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let (a, b) = (digest('a'), digest('b'));
    cluster.deploy_ok("production", &a);
    let output = cluster.deploy(
        "production",
        &b,
        Plays {
            migration_fails: true,
            ..Plays::default()
        },
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let calls = cluster.calls();
    for kinds in applied_kinds(&calls) {
        assert!(!kinds.contains(&"Deployment".to_string()), "{calls:#?}");
    }
    assert!(
        !calls
            .iter()
            .any(|call| call["call"].as_str().unwrap().starts_with("rollout")),
        "{calls:#?}"
    );
    assert_eq!(
        cluster.running(),
        a,
        "production still runs the previous release"
    );
    assert_eq!(cluster.record("digest"), a);
    assert!(cluster.record("history").contains("migration failed"));
    assert!(
        shown(&output).contains("lock timeout"),
        "the Job's log is shown"
    );
    assert_eq!(cluster.smoke_runs(), 1);
}

#[test]
fn a_first_release_that_fails_has_nothing_to_roll_back_to_and_says_so() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let a = digest('a');
    let output = cluster.deploy(
        "staging",
        &a,
        Plays {
            bad_digests: vec![a.clone()],
            ..Plays::default()
        },
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert!(
        cluster
            .summary()
            .contains("no earlier release to roll back to")
    );
    assert!(
        cluster
            .record("history")
            .contains("nothing to roll back to")
    );
}

#[test]
fn tags_unknown_environments_and_bad_names_are_refused_before_any_call() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    for (args, expected) in [
        (vec!["deploy", "staging", "0.2.0"], "never by tag"),
        (
            vec!["deploy", "staging", "sha256:abc"],
            "not an image digest",
        ),
        (
            vec!["deploy", "qa", &*digest('a')],
            "unknown environment 'qa'",
        ),
        (vec!["status"], "deploy ENV DIGEST"),
    ] {
        let output = cluster.run(&args, Plays::default());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            shown(&output)
        );
        assert!(
            shown(&output).contains(expected),
            "{args:?}: {}",
            shown(&output)
        );
        assert!(
            cluster.calls().is_empty(),
            "{args:?}: {:?}",
            cluster.calls()
        );
    }
}

#[test]
fn a_dry_run_renders_and_validates_every_environment_without_touching_a_cluster() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    if !repo()
        .join("target/ci-venv/bin/kubernetes-validate")
        .exists()
    {
        println!("=== SKIPPED: kubernetes-validate is installed by .ci/k8s-check");
        return;
    }
    for env in ["staging", "production"] {
        let output = cluster.run(
            &["--dry-run", "deploy", env, &digest('d')],
            Plays::default(),
        );
        assert!(output.status.success(), "{env}: {}", shown(&output));
        assert!(shown(&output).contains("rendered and valid, nothing applied"));
        assert!(cluster.calls().is_empty(), "{env}: {:?}", cluster.calls());
    }
    assert!(!cluster.state().join("record.json").exists());
}

#[test]
fn production_waits_for_every_canary_and_an_aborted_one_rolls_back() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let (a, b) = (digest('a'), digest('b'));
    cluster.deploy_ok("production", &a);
    let polled: Vec<String> = cluster
        .calls()
        .iter()
        .filter_map(|call| call["call"].as_str())
        .filter(|call| call.starts_with("get rollout") && call.contains("status.phase"))
        .map(|call| call.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    assert_eq!(
        polled,
        [
            "authentication",
            "bot-manager",
            "configuration",
            "logging",
            "secure-bot-data"
        ],
        "every service's canary is waited for"
    );
    let output = cluster.deploy(
        "production",
        &b,
        Plays {
            bad_canaries: vec![b.clone()],
            ..Plays::default()
        },
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert_eq!(cluster.running(), a, "the previous digest is applied again");
    assert_eq!(cluster.record("digest"), a);
    let summary = cluster.summary();
    assert!(
        summary.contains("its canary authentication was aborted")
            && summary.contains("server-error-ratio"),
        "{summary}"
    );
    assert_eq!(
        cluster.smoke_runs(),
        1,
        "no smoke test of an aborted canary"
    );
}
