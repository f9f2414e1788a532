//! How a `ContainerLifecyclePolicy` combines its layers: whether a user's own block layers on
//! their group or replaces it, whether container types or users win, and how user names are
//! matched. The defaults are this project's layering; the other values reproduce the
//! incumbent's rules for an imported configuration (`ds01ctl import-legacy` sets them).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How `users.<u>` relates to the user's group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UserOverrides {
    /// `users.<u>` layers on the user's group: fields it does not set come from the group.
    #[default]
    Layer,
    /// A user with a `users.<u>` block gets `defaults` plus that block; their group's limits are
    /// not applied (the incumbent's `user_overrides` rule).
    ReplaceGroup,
}

/// Which of `containerTypes.<t>` and `users.<u>` wins where both set a field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContainerTypePrecedence {
    /// `users.<u>` wins: defaults → group → container type → user.
    #[default]
    BelowUsers,
    /// The container type wins: defaults → group → user → container type (the incumbent's
    /// rule: a container started by `docker run`, Compose or VS Code gets its type's limits
    /// whoever owns it).
    AboveUsers,
}

/// How user names in `members`, `membersFile` and `users` keys are compared with an owner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NameMatching {
    /// The name must be equal.
    #[default]
    Exact,
    /// Equal, or, failing that, equal to the owner's sanitised name (`a.b@x.lan` → `a_b`: the
    /// part before `@`, characters other than letters, digits, `_` and `:` turned into `_`,
    /// runs of `_` collapsed, `_` trimmed at both ends, names over 32 characters cut to 27
    /// plus `_` and 4 hex digits of the MD5 of the full name). Exemptions always match exactly.
    Sanitized,
}
