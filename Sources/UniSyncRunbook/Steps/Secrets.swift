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
    ]
  }

  package func secretInputs(for deployment: Deployment) -> [SecretInput] {
    entries(deployment).map(\.input)
  }

  /// One create per secret; they are independent and run at once.
  package func actions(for deployment: Deployment) -> [Action] {
    entries(deployment).map { entry in
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
          pattern: #"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:"#
            + NSRegularExpression.escapedPattern(for: name) + "-[A-Za-z0-9]{6}$"),
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
      return action
    }
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
