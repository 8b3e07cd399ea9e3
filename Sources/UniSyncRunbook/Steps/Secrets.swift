import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 4: Secrets Manager. "Store the sensitive environment variables in Secrets Manager":
/// the encryption key, the Canvas API token and the Cognito configuration.
///
/// - The encryption key is made by the tool (32 random bytes, base64, as `openssl rand -base64 32`).
/// - The Canvas token and the Cognito ids come from the operator: from the environment variables the
///   configuration names, else from the file it names, else asked without echo on a terminal. Without
///   any of them and without a terminal the run stops before its first AWS call.
/// - Values reach `aws` only on standard input (`--secret-string file:///dev/stdin`, each command
///   has one secret): never in argv, output, logs, the checkpoint (which keeps the secrets' ARNs)
///   or any file.
/// - A secret that exists already is used as it is and keeps its value. `run --overwrite-secrets`
///   puts this run's values into the Canvas token and the Cognito configuration
///   (`put-secret-value`). Never into the encryption key: a new random key would make everything
///   encrypted with the old one unreadable; replace it by hand if that is really wanted.
///
/// The guide's `unisync/rds-password` is not created: RDS manages the master password itself
/// (`--manage-master-user-password`, see ``RDSStep``), in a secret whose ARN the rds step exports as
/// `RDS_SECRET_ARN` (the password is its key `password`). The tool never sees that password.
package struct SecretsStep: Step {
  package let id = "secrets"
  package let section = "4"
  package let title = "Secrets Manager"

  package init() {}

  /// One secret of the guide: its name in Secrets Manager, the export of its ARN, where its value comes from.
  struct Entry {
    /// The action's name and the secret input's name.
    var key: String
    var secretName: String
    var export: String
    var input: SecretInput
    /// Whether `--overwrite-secrets` puts a new value into it when it exists.
    var overwritable: Bool
  }

  func entries(_ deployment: Deployment) -> [Entry] {
    let secrets = deployment.secrets
    func supplied(_ secret: Deployment.SuppliedSecret, fields: [String]) -> SecretInput.Source {
      .supplied(
        fields: fields.map {
          SuppliedField(field: $0, environmentVariable: secret.environment[$0] ?? "")
        },
        file: secret.file)
    }
    return [
      // aws secretsmanager create-secret --name unisync/encryption-key --secret-string "$(openssl rand -base64 32)"
      Entry(
        key: "encryption-key", secretName: secrets.encryptionKeyName,
        export: "ENCRYPTION_KEY_SECRET_ARN",
        input: SecretInput(
          name: "encryption-key", label: "the encryption key", source: .randomBase64(bytes: 32)),
        overwritable: false),
      // Canvas API token
      Entry(
        key: "canvas-api-token", secretName: secrets.canvasToken.name,
        export: "CANVAS_TOKEN_SECRET_ARN",
        input: SecretInput(
          name: "canvas-api-token", label: "the Canvas API token",
          source: supplied(secrets.canvasToken, fields: ["value"])),
        overwritable: true),
      // Cognito configuration: {"userPoolId": ..., "clientId": ...}
      Entry(
        key: "cognito-config", secretName: secrets.cognito.name, export: "COGNITO_SECRET_ARN",
        input: SecretInput(
          name: "cognito-config", label: "the Cognito configuration",
          source: supplied(secrets.cognito, fields: ["userPoolId", "clientId"])),
        overwritable: true),
    ] + databaseUsers(deployment)
  }

  /// Not in the guide: the password of each service's own database user (guide 3.3 creates the
  /// users, ``DatabaseSetup``), 32 random letters and digits, never overwritten (the user has it).
  /// The services read it instead of the master password, which RDS rotates every 7 days.
  func databaseUsers(_ deployment: Deployment) -> [Entry] {
    guard deployment.rds.setup.mode == .task else { return [] }
    return deployment.services.filter { $0.database != nil }.map { service in
      Entry(
        key: "db-password-\(service.name)",
        secretName: DatabaseSetup.userSecret(deployment, service),
        export: DatabaseSetup.userSecretExport(service),
        input: SecretInput(
          name: "db-password-\(service.name)",
          label: "the database password of \(service.name)", source: .randomPassword(length: 32)),
        overwritable: false)
    }
  }

  package func secretInputs(for deployment: Deployment) -> [SecretInput] {
    entries(deployment).map(\.input)
  }

  /// One create per secret; they are independent and run at once. Before them, the secrets of
  /// this deployment's lineage that a `destroy` scheduled for deletion are restored (a secret
  /// scheduled for deletion keeps its name until its recovery window ends: "DeleteSecret" in the
  /// Secrets Manager API reference); the create then finds the restored secret, recorded as this
  /// deployment's own. A secret of that name that is not this lineage's stops the step with
  /// what to do.
  package func actions(for deployment: Deployment) -> [Action] {
    deployment.observing(
      [restorable(deployment)]
        + entries(deployment).flatMap { entry in
          [restore(entry), create(deployment, entry)]
        }, step: id)
  }

  /// One listing: the names of this deployment's secrets, of this checkpoint's lineage, that are
  /// scheduled for deletion. A fresh deployment finds none, and restores nothing.
  private func restorable(_ deployment: Deployment) -> Action {
    let names = entries(deployment).map(\.secretName)
    return Action(
      name: "secrets-scheduled-for-deletion",
      summary: "list this deployment's secrets that a destroy scheduled for deletion",
      effect: .read,
      command: .aws(
        "secretsmanager", "list-secrets", "--include-planned-deletion", "--filters",
        .text(#"[{"Key":"name","Values":"# + jsonArray(names) + "}]"),
        "--query",
        "SecretList[?DeletedDate && Tags[?Key=='\(OwnershipTag.lineage)' && Value=='\(ref: ContextValue.lineage)']].Name",
        "--output", "text"),
      // Its answer settles the restores of this run only: a resumed run with restores or creates
      // left lists again.
      ephemeral: true)
  }

  /// `restore-secret` of a secret this lineage made and a destroy scheduled for deletion; nothing
  /// to do (no call) for a name the listing left out.
  private func restore(_ entry: Entry) -> Action {
    Action(
      name: "restore-\(entry.key)",
      summary: "restore \(entry.secretName) if a destroy scheduled it for deletion",
      effect: .write,
      command: .aws(
        "secretsmanager", "restore-secret", "--secret-id", .text(entry.secretName), "--query",
        "ARN", "--output", "text"),
      // Restoring a secret that is not scheduled for deletion changes nothing, and one that is
      // gone has nothing to restore: a resumed run, whose listing of an earlier run spares
      // nothing, may make the call for nothing.
      alreadyDoneErrors: ["ResourceNotFoundException", "InvalidRequestException"],
      idempotent: true,
      settledBy: .nothingToDo(
        unlessListedBy: "secrets-scheduled-for-deletion", name: entry.secretName))
  }

  private func create(_ deployment: Deployment, _ entry: Entry) -> Action {
    let name = entry.secretName
    // `runbook destroy` keeps secrets for a recovery window; until it ends the name is taken.
    let scheduled =
      "if \(name) is scheduled for deletion (a destroy keeps secrets for its recovery window), restore it with "
      + "'aws secretsmanager restore-secret --secret-id \(name)' and run again: the restored secret is used as it is "
      + "(add --overwrite-secrets for a new value)"
    var action = Action(
      name: entry.key, summary: "store \(entry.input.label) in \(name)", effect: .write,
      command: .aws(
        "secretsmanager", "create-secret", "--name", .text(name), "--secret-string",
        .secretFile(entry.key),
        "--tags", deployment.tagList(name: name, action: "secrets/\(entry.key)"),
        "--query", "ARN", "--output", "text"),
      capture: Capture(
        export: entry.export,
        pattern: arnPattern("secretsmanager", "secret:", name: name, suffix: "-[A-Za-z0-9]{6}")),
      // Succeeds (empty) when there is none, so it also serves a run interrupted before the create.
      // Secrets scheduled for deletion are not listed: such a name is reported, not used.
      lookup: Lookup(
        .aws(
          "secretsmanager", "list-secrets", "--filters",
          .text(#"[{"Key":"name","Values":["# + jsonString(name) + "]}]"),
          "--query", "SecretList[?Name=='\(name)'].ARN", "--output", "text")),
      alreadyDoneErrors: ["ResourceExistsException"],
      overwrite: entry.overwritable
        ? .aws(
          "secretsmanager", "put-secret-value", "--secret-id", .text(name),
          "--secret-string", .secretFile(entry.key), "--query", "ARN", "--output", "text")
        : nil)
    action.errorAdvice = [
      "ResourceExistsException": scheduled, "InvalidRequestException": scheduled,
    ]
    // Restored in this run: it is this lineage's own secret, found by name with its tag.
    action.precheck = Precheck(
      .aws(
        "secretsmanager", "describe-secret", "--secret-id", .text(name), "--query",
        "[ARN, Tags[?Key=='\(OwnershipTag.lineage)'].Value | [0]]", "--output", "text"),
      rule: "the restored secret carries this checkpoint's lineage"
    ) { output, values in
      let words = output.split(whereSeparator: \.isWhitespace).map(String.init)
      guard words.count == 2, words[1] == values[ContextValue.lineage] else { return nil }
      return words[0]
    }
    action.precheck?.provesOwnership = true
    action.settledBy = .nothingToFind(
      unlessListedBy: "secrets-scheduled-for-deletion", name: name)
    action.after = ["restore-\(entry.key)"]
    return action
  }
}

// MARK: - Teardown (runbook destroy)

extension SecretsStep {
  /// Each secret scheduled for deletion after the configured recovery window (restorable until
  /// then with `aws secretsmanager restore-secret`), or deleted at once with
  /// `destroy --force-delete-without-recovery`. A secret scheduled already counts as done.
  package func teardown(for deployment: Deployment) -> [Action] {
    let window: [Argument] =
      deployment.request.deleteSecretsWithoutRecovery
      ? ["--force-delete-without-recovery"]
      : ["--recovery-window-in-days", "\(deployment.secrets.recoveryWindowDays)"]
    return entries(deployment).map { entry in
      Action(
        name: "delete-\(entry.key)",
        summary: "delete secret \(entry.secretName)"
          + (deployment.request.deleteSecretsWithoutRecovery
            ? " at once, without recovery"
            : " after \(deployment.secrets.recoveryWindowDays) days"),
        effect: .write,
        command: .aws(
          ["secretsmanager", "delete-secret", "--secret-id", .ref(entry.export)] + window
            + ["--query", "DeletionDate", "--output", "text"]),
        alreadyDoneErrors: ["ResourceNotFoundException"],
        precheck: Precheck(
          .aws(
            "secretsmanager", "describe-secret", "--secret-id", .ref(entry.export),
            "--query", "DeletedDate", "--output", "text"),
          rule: "the secret is scheduled for deletion already"
        ) { output, _ in
          let date = output.trimmingCharacters(in: .whitespacesAndNewlines)
          return deployment.request.deleteSecretsWithoutRecovery || date.isEmpty || date == "None"
            ? nil : "scheduled for deletion already (\(date))"
        },
        deletes: entry.key)
    }
  }
}
