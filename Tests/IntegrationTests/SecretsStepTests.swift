import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 4 against the real aws CLI and the local emulator.
final class SecretsStepTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// The guide's three, and the passwords of the services' own database users (issue 17).
  static let names = [
    "unisync/canvas-api-token", "unisync/cognito-config", "unisync/db-course-service",
    "unisync/db-schedule-service", "unisync/db-user-service", "unisync/encryption-key",
  ]

  /// Long, distinctive values, new for every test, so a leak cannot hide in a coincidence.
  struct Supplied {
    var token = "canvas-token-" + UUID().uuidString + UUID().uuidString
    var pool = "ap-northeast-2_" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    var client = "client" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()

    var environment: [String: String] {
      [
        "UNISYNC_CANVAS_API_TOKEN": token, "UNISYNC_COGNITO_USER_POOL_ID": pool,
        "UNISYNC_COGNITO_CLIENT_ID": client,
      ]
    }
  }

  /// Names of the secrets of this deployment in the emulator (not RDS's own), sorted.
  static func unisyncSecrets(_ workspace: Workspace) async throws -> [String] {
    let result = try await workspace.aws(["secretsmanager", "list-secrets"])
    let list = (result as? [String: Any])?["SecretList"] as? [[String: Any]] ?? []
    return list.compactMap { $0["Name"] as? String }.filter { $0.hasPrefix("unisync/") }.sorted()
  }

  static func value(_ workspace: Workspace, _ name: String) async throws -> String {
    let result = try await workspace.aws([
      "secretsmanager", "get-secret-value", "--secret-id", name,
    ])
    return (result as? [String: Any])?["SecretString"] as? String ?? ""
  }

  static func arn(_ workspace: Workspace, _ name: String) async throws -> String {
    let result = try await workspace.aws(["secretsmanager", "describe-secret", "--secret-id", name])
    return (result as? [String: Any])?["ARN"] as? String ?? ""
  }

  /// Runs `runbook run secrets --yes ARGS` with the supplied values in the environment, logging aws calls.
  func runSecrets(
    _ workspace: Workspace, _ supplied: Supplied, _ arguments: [String] = [],
    log name: String = "aws.log"
  )
    async throws -> (run: ToolRun, log: String)
  {
    let log = workspace.directory.appendingPathComponent(name).path
    var environment = supplied.environment
    environment["RUNBOOK_AWS_LOG"] = log
    let run = try await workspace.run(
      ["run", "secrets", "--yes"] + arguments, environment: environment)
    XCTAssertEqual(run.status, 0, run.summary)
    return (run, log)
  }

  /// Checks that the Canvas token and the Cognito configuration hold `supplied`; returns the encryption key.
  func assertSuppliedValuesStored(
    _ workspace: Workspace, _ supplied: Supplied, file: StaticString = #filePath, line: UInt = #line
  ) async throws -> String {
    let token = try await Self.value(workspace, "unisync/canvas-api-token")
    XCTAssertEqual(token, supplied.token, file: file, line: line)
    let config = try await Self.value(workspace, "unisync/cognito-config")
    let fields = (try? JSONSerialization.jsonObject(with: Data(config.utf8))) as? [String: String]
    XCTAssertEqual(
      fields, ["userPoolId": supplied.pool, "clientId": supplied.client], file: file, line: line)
    return try await Self.value(workspace, "unisync/encryption-key")
  }

  func testRunStoresTheThreeSecretsOnceAndARerunWritesNothing() async throws {
    let workspace = try Workspace()
    let supplied = Supplied()
    let (_, log) = try await runSecrets(workspace, supplied)

    let secrets = try await Self.unisyncSecrets(workspace)
    XCTAssertEqual(secrets, Self.names)
    for name in Self.names {
      let creates = calls("secretsmanager create-secret", in: log).filter { $0.argv.contains(name) }
      XCTAssertEqual(creates.count, 1, "create-secret \(name)")
    }
    let key = try await assertSuppliedValuesStored(workspace, supplied)
    XCTAssertEqual(
      Data(base64Encoded: key)?.count, 32, "the encryption key is 32 random bytes in base64")

    let exports = try workspace.checkpoint().exports
    let canvasARN = try await Self.arn(workspace, "unisync/canvas-api-token")
    let cognitoARN = try await Self.arn(workspace, "unisync/cognito-config")
    let keyARN = try await Self.arn(workspace, "unisync/encryption-key")
    XCTAssertEqual(exports["CANVAS_TOKEN_SECRET_ARN"], canvasARN)
    XCTAssertEqual(exports["COGNITO_SECRET_ARN"], cognitoARN)
    XCTAssertEqual(exports["ENCRYPTION_KEY_SECRET_ARN"], keyARN)
    let tags = try await workspace.aws([
      "secretsmanager", "describe-secret", "--secret-id", "unisync/cognito-config",
    ])
    let tagList = (tags as? [String: Any])?["Tags"] as? [[String: String]] ?? []
    XCTAssertTrue(
      tagList.contains(["Key": "runbook:action", "Value": "secrets/cognito-config"]), "\(tagList)")

    let (_, rerunLog) = try await runSecrets(workspace, supplied, log: "aws-rerun.log")
    XCTAssertEqual(loggedArgv(rerunLog).filter { $0.write }.count, 0, "a rerun wrote")
  }

  /// Neither a supplied value nor the generated key shows up anywhere but in Secrets Manager.
  func testSecretValuesAppearInNoArgvOutputLogOrStateFile() async throws {
    let workspace = try Workspace()
    let supplied = Supplied()
    let (run, log) = try await runSecrets(workspace, supplied, ["--verbose"])
    let key = try await Self.value(workspace, "unisync/encryption-key")
    let config = try await Self.value(workspace, "unisync/cognito-config")
    // The generated passwords of the services' database users, too.
    var passwords: [String: String] = [:]
    for service in ["user-service", "course-service", "schedule-service"] {
      let password = try await Self.value(workspace, "unisync/db-\(service)")
      XCTAssertNotNil(password.range(of: "^[A-Za-z0-9]{32}$", options: .regularExpression))
      passwords["unisync/db-\(service)"] = password
    }
    let secrets =
      [supplied.token, supplied.pool, supplied.client, key, config] + Array(passwords.values)
    XCTAssertEqual(Data(base64Encoded: key)?.count, 32)

    let status = try await workspace.run(["status", "--json"])
    XCTAssertEqual(status.status, 0, status.summary)
    let env = try await workspace.run(["env"])
    XCTAssertTrue(env.stdout.contains("CANVAS_TOKEN_SECRET_ARN="), env.stdout)
    var places: [String: String] = [
      "stdout": run.stdout, "stderr": run.stderr, "status --json": status.stdout, "env": env.stdout,
    ]
    for (name, data) in workspace.stateSnapshot() {
      places[name] = String(decoding: data, as: UTF8.self)
    }
    XCTAssertNotNil(places["state.json"])
    XCTAssertNotNil(places["journal.jsonl"])
    XCTAssertTrue(places.keys.contains { $0.hasPrefix("logs/") }, "\(places.keys)")

    let logged = loggedArgv(log)
    // The three of the guide, and the passwords of the three services' database users.
    XCTAssertEqual(logged.filter { $0.write }.count, 6)
    // Each value went on the standard input of its own create-secret, and nowhere else.
    var piped: [String: String] = [:]
    for (index, call) in logged.enumerated() {
      places["argv of call \(index)"] = call.argv.joined(separator: " ")
      let stdin = String(decoding: Data(base64Encoded: call.stdin ?? "") ?? Data(), as: UTF8.self)
      if call.argv.starts(with: ["secretsmanager", "create-secret"]) {
        let index = try XCTUnwrap(call.argv.firstIndex(of: "--secret-string"))
        XCTAssertEqual(call.argv[index + 1], "file:///dev/stdin")
        piped[call.argv[3]] = stdin
      } else {
        places["stdin of call \(index)"] = stdin
      }
    }
    XCTAssertEqual(
      piped,
      [
        "unisync/canvas-api-token": supplied.token, "unisync/cognito-config": config,
        "unisync/encryption-key": key,
      ].merging(passwords) { $1 })
    for (place, text) in places {
      for secret in secrets {
        XCTAssertFalse(text.contains(secret), "a secret value is in \(place)")
      }
    }
  }

  func testMissingSuppliedValueWithoutTerminalStopsBeforeAnyCall() async throws {
    let workspace = try Workspace()
    let log = workspace.directory.appendingPathComponent("aws.log").path
    var environment = Supplied().environment
    environment["UNISYNC_CANVAS_API_TOKEN"] = ""
    environment["RUNBOOK_AWS_LOG"] = log
    let run = try await workspace.run(["run", "secrets", "--yes"], environment: environment)
    XCTAssertEqual(run.status, 2, run.summary)
    XCTAssertTrue(run.stderr.contains("UNISYNC_CANVAS_API_TOKEN"), run.stderr)
    XCTAssertEqual(loggedArgv(log).count, 0, "aws was called")

    environment = Supplied().environment
    environment["UNISYNC_COGNITO_CLIENT_ID"] = ""
    environment["RUNBOOK_AWS_LOG"] = log
    let partial = try await workspace.run(["run", "secrets", "--yes"], environment: environment)
    XCTAssertEqual(partial.status, 2, partial.summary)
    XCTAssertTrue(partial.stderr.contains("UNISYNC_COGNITO_CLIENT_ID"), partial.stderr)
    XCTAssertFalse(partial.stderr.contains("UNISYNC_COGNITO_USER_POOL_ID"), partial.stderr)
    XCTAssertEqual(loggedArgv(log).count, 0, "aws was called")
    let secrets = try await Self.unisyncSecrets(workspace)
    XCTAssertEqual(secrets, [])
  }

  /// Secrets made before the tool ran are used as they are; `--overwrite-secrets` replaces the
  /// supplied ones (here read from files named in the configuration), never the encryption key.
  func testExistingSecretsKeepTheirValuesUnlessOverwriteIsAsked() async throws {
    let supplied = Supplied()
    let workspace = try Workspace { config in
      var secrets = config["secrets"] as! [String: Any]
      for key in ["canvasToken", "cognito"] {
        var entry = secrets[key] as! [String: Any]
        entry["file"] = key + ".secret"
        secrets[key] = entry
      }
      config["secrets"] = secrets
    }
    try Data(supplied.token.utf8).write(
      to: workspace.directory.appendingPathComponent("canvasToken.secret"))
    try JSONSerialization.data(withJSONObject: [
      "userPoolId": supplied.pool, "clientId": supplied.client,
    ])
    .write(to: workspace.directory.appendingPathComponent("cognito.secret"))
    var before: [String: String] = [:]
    for name in Self.names {
      let old = "old-" + name + "-" + UUID().uuidString
      _ = try await workspace.aws([
        "secretsmanager", "create-secret", "--name", name, "--secret-string", old,
      ])
      before[name] = old
    }
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let noVariables = [
      "UNISYNC_CANVAS_API_TOKEN": "", "UNISYNC_COGNITO_USER_POOL_ID": "",
      "UNISYNC_COGNITO_CLIENT_ID": "",
    ]
    let run = try await workspace.run(
      ["run", "secrets", "--yes"], environment: noVariables.merging(["RUNBOOK_AWS_LOG": log]) { $1 }
    )
    XCTAssertEqual(run.status, 0, run.summary)
    for name in Self.names {
      let current = try await Self.value(workspace, name)
      XCTAssertEqual(current, before[name], "\(name) was overwritten")
    }
    XCTAssertEqual(calls("secretsmanager put-secret-value", in: log).count, 0)
    let exports = try workspace.checkpoint().exports
    let canvasARN = try await Self.arn(workspace, "unisync/canvas-api-token")
    XCTAssertEqual(exports["CANVAS_TOKEN_SECRET_ARN"], canvasARN)
    // The three creates found their secrets (the listing of secrets to restore, and the restores
    // it left out, are no creates).
    let outcomes = try workspace.checkpoint().actions.filter {
      $0.key.hasPrefix("secrets/") && $0.value.export != nil
    }.mapValues(\.outcome)
    XCTAssertEqual(outcomes.count, 6, "\(outcomes)")
    XCTAssertEqual(Set(outcomes.values), [.alreadyDone], "\(outcomes)")

    let overwriteLog = workspace.directory.appendingPathComponent("aws-overwrite.log").path
    let overwrite = try await workspace.run(
      ["run", "secrets", "--yes", "--overwrite-secrets"],
      environment: noVariables.merging(["RUNBOOK_AWS_LOG": overwriteLog]) { $1 })
    XCTAssertEqual(overwrite.status, 0, overwrite.summary)
    let key = try await assertSuppliedValuesStored(workspace, supplied)
    XCTAssertEqual(
      key, before["unisync/encryption-key"], "the encryption key must never be replaced")
    let puts = calls("secretsmanager put-secret-value", in: overwriteLog)
    XCTAssertEqual(
      puts.map { $0.argv[3] }.sorted(), ["unisync/canvas-api-token", "unisync/cognito-config"])
    XCTAssertTrue(puts.allSatisfy { $0.argv.contains(Resolver.standardInputFile) }, "\(puts)")
    XCTAssertEqual(loggedArgv(overwriteLog).filter { $0.write }.count, 2)
    let secrets = try await Self.unisyncSecrets(workspace)
    XCTAssertEqual(secrets, Self.names)
  }

  /// A secret scheduled for deletion still blocks its name; the run says so instead of recording
  /// the step done without the secret's ARN.
  func testSecretScheduledForDeletionStopsTheStep() async throws {
    let workspace = try Workspace()
    _ = try await workspace.aws(
      [
        "secretsmanager", "create-secret", "--name", "unisync/canvas-api-token", "--secret-string",
        "old",
      ])
    _ = try await workspace.aws(
      [
        "secretsmanager", "delete-secret", "--secret-id", "unisync/canvas-api-token",
        "--recovery-window-in-days", "7",
      ])
    let run = try await workspace.run(
      ["run", "secrets", "--yes"], environment: Supplied().environment)
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertTrue(run.stderr.contains("canvas-api-token"), run.stderr)
    // AWS answers InvalidRequestException ("already scheduled for deletion"), as the strict
    // layer does; moto alone answers ResourceExistsException.
    XCTAssertTrue(
      run.stderr.contains("InvalidRequestException")
        || run.stderr.contains("ResourceExistsException"), run.stderr)
    XCTAssertTrue(
      run.stderr.contains("aws secretsmanager restore-secret --secret-id unisync/canvas-api-token"),
      run.stderr)
    let checkpoint = try workspace.checkpoint()
    XCTAssertNil(checkpoint.exports["CANVAS_TOKEN_SECRET_ARN"])
    XCTAssertNotEqual(checkpoint.record("secrets", "canvas-api-token")?.status, .done)
    XCTAssertEqual(checkpoint.lastFailure?.action, "canvas-api-token")

    // Restored as the failure says, the secret is used as it is: found by name, not created again.
    _ = try await workspace.aws([
      "secretsmanager", "restore-secret", "--secret-id", "unisync/canvas-api-token",
    ])
    let again = try await workspace.run(
      ["run", "secrets", "--yes"], environment: Supplied().environment)
    XCTAssertEqual(again.status, 0, again.summary)
    XCTAssertEqual(try workspace.checkpoint().record("secrets", "canvas-api-token")?.status, .done)
    XCTAssertNotNil(try workspace.checkpoint().exports["CANVAS_TOKEN_SECRET_ARN"])
  }
}
