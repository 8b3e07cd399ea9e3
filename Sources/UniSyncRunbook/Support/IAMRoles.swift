import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// An IAM role a step creates the way the guide does (6.2, 7.1): a trust policy for one AWS
/// service, managed policies attached, and at most one inline policy.
struct RoleSpec {
  /// The name of the create action; the others are named after it.
  var key: String
  var name: String
  /// The service allowed to assume it (`ecs-tasks.amazonaws.com`).
  var principal: String
  var export: String
  var managedPolicies: [String]
  /// The inline policy's name and document; nil for a role without one (the task role).
  var inlinePolicyName: String?
  var inlinePolicy: Argument?
}

extension Deployment {
  /// `create-role`, `attach-role-policy` for each managed policy, `put-role-policy`.
  ///
  /// A role is found by its name, which is unique in the account: one that exists already (made
  /// by hand, or by another team, as `ecsTaskExecutionRole` often is) is used as it is, with the
  /// policies it has: the attachments and the inline policy are settings (``Action/configures``),
  /// applied only to a role this deployment made (a `put-role-policy` of the same name would
  /// replace that team's document). Attaching and putting policies again changes nothing, so those
  /// are safe to repeat after a kill.
  func roleActions(step: String, _ role: RoleSpec) -> [Action] {
    let trust =
      #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"#
      + jsonString(role.principal) + #"},"Action":"sts:AssumeRole"}]}"#
    var create = Action.create(
      role.key, "create IAM role \(role.name) (trusted by \(role.principal))", export: role.export,
      pattern: arnPattern("iam", "role/([^/]+/)*", name: role.name, regional: false),
      command: .aws(
        "iam", "create-role", "--role-name", .text(role.name),
        "--assume-role-policy-document", .document("\(role.key)-trust-policy", .text(trust)),
        "--tags", tagList(name: role.name, action: "\(step)/\(role.key)"),
        "--query", "Role.Arn", "--output", "text"),
      lookup: nil)
    // After an interruption, only a role this deployment created (its lineage tag) is recovered:
    // one of that name that existed before is answered EntityAlreadyExists, found by its name,
    // and stays the operator's (destroy leaves it).
    create.lookup = Lookup(
      .aws(
        "iam", "get-role", "--role-name", .text(role.name), "--query",
        "[Role][?Tags[?Key=='\(OwnershipTag.lineage)' && Value=='\(ref: ContextValue.lineage)']].Arn",
        "--output", "text"),
      notFoundErrors: ["NoSuchEntity"])
    create.existingLookup = Lookup(
      .aws(
        "iam", "list-roles", "--query", "Roles[?RoleName=='\(role.name)'].Arn", "--output", "text"))
    create.alreadyDoneErrors = ["EntityAlreadyExists"]
    var actions = [create]
    for policy in role.managedPolicies {
      let short = policy.split(separator: "/").last.map(String.init) ?? policy
      actions.append(
        Action(
          name: "\(role.key)-\(short)", summary: "attach \(short) to \(role.name)", effect: .write,
          command: .aws(
            "iam", "attach-role-policy", "--role-name", .text(role.name), "--policy-arn",
            .text(policy)),
          lookup: Lookup(
            .aws(
              "iam", "list-attached-role-policies", "--role-name", .text(role.name),
              "--query", "AttachedPolicies[?PolicyArn=='\(policy)'].PolicyArn", "--output", "text"),
            pattern: exactPattern(policy)),
          after: [role.key]
        ).configuring(role.key))
    }
    // Put only when the role does not have this very document (a changed configuration updates it).
    guard let document = role.inlinePolicy, let inlinePolicyName = role.inlinePolicyName else {
      return actions
    }
    actions.append(
      Action(
        name: "\(role.key)-\(inlinePolicyName)",
        summary: "put the inline policy \(inlinePolicyName) on \(role.name)", effect: .write,
        command: .aws(
          "iam", "put-role-policy", "--role-name", .text(role.name),
          "--policy-name", .text(inlinePolicyName),
          "--policy-document", .document(inlinePolicyName, document)),
        precheck: Precheck(
          .aws(
            "iam", "get-role-policy", "--role-name", .text(role.name),
            "--policy-name", .text(inlinePolicyName), "--query", "PolicyDocument", "--output",
            "json"),
          rule: "\(role.name) has this \(inlinePolicyName) document"
        ) { output, values in
          guard let text = document.text(values: values),
            let wanted = JSONValue(parsing: text), let actual = JSONValue(parsing: output),
            jsonContains(actual, wanted), jsonContains(wanted, actual)
          else { return nil }
          return inlinePolicyName
        },
        after: [role.key], settledBy: .nothingToFind(whenCreated: role.key)
      ).configuring(role.key))
    return actions
  }

  /// ARN patterns of this deployment's secrets in Secrets Manager: `…:secret:unisync/*` for names
  /// under `unisync/`, `…:secret:NAME-*` for a name without a folder (AWS adds a random suffix).
  func secretARNPatterns() -> [Argument] {
    let patterns = secretNamePatterns()
    return patterns.map {
      "arn:aws:secretsmanager:\(ref: ContextValue.region):\(ref: ContextValue.account):secret:\($0)"
    }
  }
}

/// An IAM policy document: one `Allow` statement per entry.
func policyDocument(_ statements: [(actions: [String], resources: [Argument])]) -> Argument {
  var parts: [Argument] = [#"{"Version":"2012-10-17","Statement":["#]
  for (index, statement) in statements.enumerated() {
    parts.append(
      (index == 0 ? "" : ",") + #"{"Effect":"Allow","Action":"#
        + .text(jsonArray(statement.actions)) + #","Resource":"#)
    parts.append(jsonArray(statement.resources))
    parts.append("}")
  }
  parts.append("]}")
  return joined(parts)
}

extension Deployment {
  /// A role's teardown: its managed policies detached, its inline policy deleted, the role
  /// deleted. All of it only when this deployment created the role: a role that existed already
  /// (`ecsTaskExecutionRole` often does) is left as it is, with the policies it has.
  func roleTeardown(_ role: RoleSpec, after: [String] = []) -> [Action] {
    var actions: [Action] = role.managedPolicies.map { policy in
      let short = policy.split(separator: "/").last.map(String.init) ?? policy
      return Action(
        name: "detach-\(role.key)-\(short)", summary: "detach \(short) from \(role.name)",
        effect: .write,
        command: .aws(
          "iam", "detach-role-policy", "--role-name", .text(role.name), "--policy-arn",
          .text(policy)),
        alreadyDoneErrors: ["NoSuchEntity"], after: after, deletes: role.key)
    }
    if let inlinePolicyName = role.inlinePolicyName {
      actions.append(
        Action(
          name: "delete-\(role.key)-\(inlinePolicyName)",
          summary: "delete the inline policy \(inlinePolicyName) of \(role.name)",
          effect: .write,
          command: .aws(
            "iam", "delete-role-policy", "--role-name", .text(role.name), "--policy-name",
            .text(inlinePolicyName)),
          alreadyDoneErrors: ["NoSuchEntity"], after: after, deletes: role.key))
    }
    actions.append(
      Action(
        name: "delete-\(role.key)", summary: "delete IAM role \(role.name)", effect: .write,
        command: .aws("iam", "delete-role", "--role-name", .text(role.name)),
        alreadyDoneErrors: ["NoSuchEntity"], after: actions.map(\.name),
        transientErrors: TransientErrors(["DeleteConflict"], seconds: 60, intervalSeconds: 5),
        deletes: role.key))
    return actions
  }
}
