//! The shape of the code, as ARCHITECTURE.md describes it, checked on every run: each service
//! has `api/` (HTTP only), `ops/` (its operations) and `store/` (its SQL); a handler never
//! touches the database, opens a transaction, calls the store or reads a token's claims by
//! hand; and no function is longer than 80 lines. The sources are read as Rust (syn), so
//! comments and strings never count.

use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::{self, Visit};

const MAX_FUNCTION_LINES: usize = 80;

/// The services of the registry, by crate directory.
const SERVICE_CRATES: [&str; 5] = [
    "authentication",
    "bot-manager",
    "configuration",
    "log-service",
    "secure-bot-data",
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{dir:?}: {err}")) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
    syn::parse_file(&text).unwrap_or_else(|err| panic!("{path:?} does not parse: {err}"))
}

/// Functions (free, methods, trait defaults, nested) longer than the limit, from the
/// signature to the closing brace; doc comments do not count.
#[derive(Default)]
struct LongFunctions(Vec<String>);

impl LongFunctions {
    fn check(&mut self, sig: &syn::Signature, block: &syn::Block) {
        let (start, end) = (sig.span().start().line, block.span().end().line);
        let lines = end + 1 - start;
        if lines > MAX_FUNCTION_LINES {
            self.0
                .push(format!("{} (line {start}): {lines} lines", sig.ident));
        }
    }
}

impl<'ast> Visit<'ast> for LongFunctions {
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.check(&item.sig, &item.block);
        visit::visit_item_fn(self, item);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.check(&item.sig, &item.block);
        visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.check(&item.sig, block);
        }
        visit::visit_trait_item_fn(self, item);
    }
}

/// What an `api/` module must not do: name sqlx, open a transaction or take a pool, call a
/// store function, import anything but types from the store, or take `Authenticated` claims
/// instead of the `Caller`.
#[derive(Default)]
struct HandlerBreaches(Vec<String>);

impl HandlerBreaches {
    fn found(&mut self, what: impl Into<String>, span: proc_macro2::Span) {
        self.0
            .push(format!("line {}: {}", span.start().line, what.into()));
    }
}

fn path_names(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn is_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
}

impl<'ast> Visit<'ast> for HandlerBreaches {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        let names = path_names(path);
        if names.iter().any(|n| n == "sqlx") {
            self.found("names sqlx", path.span());
        }
        if names.iter().any(|n| n == "Authenticated") {
            self.found("takes Authenticated claims, not the Caller", path.span());
        }
        visit::visit_path(self, path);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let method = call.method.to_string();
        if ["begin", "pool"].contains(&method.as_str()) {
            self.found(format!("calls .{method}()"), call.method.span());
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(func) = &*call.func
            && path_names(&func.path).iter().any(|n| n == "store")
        {
            self.found("calls the store", func.span());
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut imports = Vec::new();
        flatten_use(&item.tree, &mut Vec::new(), &mut imports);
        for path in imports {
            let from_store = path.iter().rev().skip(1).any(|n| n == "store");
            let last = path.last().map(String::as_str).unwrap_or("");
            if from_store && !is_type_name(last) && last != "self" {
                self.found(
                    format!("imports `{}` from the store", path.join("::")),
                    item.span(),
                );
            }
        }
        visit::visit_item_use(self, item);
    }
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(path) => {
            prefix.push(path.ident.to_string());
            flatten_use(&path.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(name) => {
            let mut full = prefix.clone();
            full.push(name.ident.to_string());
            out.push(full);
        }
        syn::UseTree::Rename(rename) => {
            let mut full = prefix.clone();
            full.push(rename.ident.to_string());
            out.push(full);
        }
        syn::UseTree::Glob(_) => {
            let mut full = prefix.clone();
            full.push("*".into());
            out.push(full);
        }
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                flatten_use(tree, prefix, out);
            }
        }
    }
}

fn long_functions_in(file: &syn::File) -> Vec<String> {
    let mut long = LongFunctions::default();
    long.visit_file(file);
    long.0
}

fn handler_breaches_in(file: &syn::File) -> Vec<String> {
    let mut breaches = HandlerBreaches::default();
    breaches.visit_file(file);
    breaches.0
}

#[test]
fn no_function_in_the_sources_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for path in rust_files(&crates_dir()) {
        if !path.components().any(|c| c.as_os_str() == "src") {
            continue;
        }
        for found in long_functions_in(&parse(&path)) {
            long.push(format!("{}: {found}", path.display()));
        }
    }
    assert!(
        long.is_empty(),
        "split these where a name explains the part:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_service_has_api_ops_and_store() {
    for service in SERVICE_CRATES {
        let src = crates_dir().join(service).join("src");
        for layer in ["api", "ops", "store"] {
            assert!(
                src.join(layer).is_dir() || src.join(format!("{layer}.rs")).is_file(),
                "{service} has no {layer}/"
            );
        }
    }
}

#[test]
fn handlers_hold_no_sql_open_no_transaction_and_call_no_store() {
    let mut breaches = Vec::new();
    for service in SERVICE_CRATES {
        let api = crates_dir().join(service).join("src").join("api");
        for path in rust_files(&api) {
            for found in handler_breaches_in(&parse(&path)) {
                breaches.push(format!("{}: {found}", path.display()));
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "move these into ops/ (checks, transactions) or store/ (SQL):\n{}",
        breaches.join("\n")
    );
}

/// The checks themselves catch what they are for.
#[test]
fn the_checks_find_a_long_function_and_a_handler_that_reaches_the_database() {
    let body = "    let x = 1;\n".repeat(MAX_FUNCTION_LINES - 1);
    let long: syn::File = syn::parse_str(&format!("fn long() {{\n{body}}}")).unwrap();
    assert_eq!(long_functions_in(&long).len(), 1);
    let short: syn::File = syn::parse_str(&format!(
        "/// doc\n/// doc\nfn short() {{\n{}}}",
        "    let x = 1;\n".repeat(78)
    ))
    .unwrap();
    assert!(long_functions_in(&short).is_empty());

    let handler: syn::File = syn::parse_str(
        r#"
        use crate::store::posts::{self, PostRow, insert};
        async fn handler(state: State, Authenticated(claims): Authenticated) {
            let mut tx = state.db.pool().begin().await;
            sqlx::query("DELETE FROM posts").execute(&mut tx).await;
            store::posts::delete(&state.db, 1).await;
        }
        "#,
    )
    .unwrap();
    let found = handler_breaches_in(&handler).join("\n");
    for breach in [
        "imports `crate::store::posts::insert`",
        "Authenticated",
        ".pool()",
        ".begin()",
        "names sqlx",
        "calls the store",
    ] {
        assert!(found.contains(breach), "{breach} not found in:\n{found}");
    }
    assert!(
        !found.contains("PostRow"),
        "a row type may be used: {found}"
    );
}
