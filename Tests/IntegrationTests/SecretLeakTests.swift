import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// The secret suite over the whole runbook (part of ``DayTwoTests``).
extension DayTwoTests {
  /// Every secret value of the deployment, by what it is: the values the operator supplied, and
  /// what only AWS should know, read from the emulator (before destroy takes it away): the
  /// generated encryption key, the Cognito document, the RDS master password, the ECR token.
  func secretValues(_ workspace: Workspace, supplied: [String: String]) async throws -> [String:
    String]
  {
    func value(_ id: String) async throws -> String {
      let result = try await workspace.aws([
        "secretsmanager", "get-secret-value", "--secret-id", id,
      ])
      return try XCTUnwrap((result as? [String: Any])?["SecretString"] as? String, id)
    }
    var secrets = supplied
    secrets["the generated encryption key"] = try await value("unisync/encryption-key")
    XCTAssertEqual(Data(base64Encoded: secrets["the generated encryption key"]!)?.count, 32)
    secrets["the Cognito document"] = try await value("unisync/cognito-config")
    let token = try await value("unisync/canvas-api-token")
    XCTAssertEqual(token, supplied["UNISYNC_CANVAS_API_TOKEN"])
    let master = try await value(try XCTUnwrap(workspace.checkpoint().exports["RDS_SECRET_ARN"]))
    let password = (try JSONSerialization.jsonObject(with: Data(master.utf8)) as? [String: Any])?[
      "password"]
    secrets["the RDS master password"] = try XCTUnwrap(password as? String, master)
    secrets["the ECR token"] = try await emulatorRegistryPassword(workspace.endpoint)
    for (name, secret) in secrets {
      XCTAssertGreaterThanOrEqual(secret.count, 8, "\(name) is too short to look for")
    }

    // What an operator reads before destroy.
    for arguments in [["status", "--json"], ["env"]] {
      let run = try await workspace.run(arguments)
      XCTAssertEqual(run.status, 0, run.summary)
    }
    return secrets
  }

  /// After the deployment, the update and the destroy: no secret value in any argv the shims
  /// logged (aws and docker), in any output of the tool (`status --json` and `env` included),
  /// or in any file of the state directory (checkpoint, journal, audit logs).
  func checkNoSecretAnywhere(_ workspace: Workspace, secrets: [String: String]) async throws {
    for arguments in [["status", "--json"], ["env"]] {
      let run = try await workspace.run(arguments)
      XCTAssertEqual(run.status, 0, run.summary)
    }
    let places = workspace.placesSecretsMustNotBe()
    XCTAssertNotNil(workspace.environment["TMPDIR"], "the runs' temporary folder is scanned")
    XCTAssertNotNil(places["background run 0 output"], "verify --follow's output is scanned")
    XCTAssertNotNil(places["state/state.json"])
    XCTAssertNotNil(places["state/journal.jsonl"])
    XCTAssertTrue(places.keys.contains { $0.hasPrefix("state/logs/") }, "\(places.keys.sorted())")
    XCTAssertTrue(places.keys.contains { $0.hasPrefix("docker.log call") }, "no docker call logged")
    let argv = places.keys.filter { $0.hasSuffix(" argv") }.count
    XCTAssertGreaterThan(argv, 300, "the shims' logs should hold every call")
    for (place, text) in places.sorted(by: { $0.key < $1.key }) {
      for (name, secret) in secrets where text.contains(secret) {
        XCTFail("\(name) is in \(place)")
      }
    }
    report(
      "secret scan: \(secrets.count) values, \(places.count) places (\(argv) logged calls, \(workspace.transcript.count) runs)"
    )
  }
}

/// Runs killed in the middle of the secrets step (guide 4) leave no secret value on disk: not in
/// their temporary folder, not in the state directory, not after the kill and not after the run
/// that resumes; and what a killed run left in the state directory's private folder is gone
/// once the next run started.
final class SecretLeakTests: XCTestCase {
  func testRunsKilledMidSecretLeaveNoSecretInTMPDIROrTheStateDirectory() async throws {
    try Emulator.reset()
    let workspace = try Workspace()
    let temporary = try workspace.privateTemporaryDirectory()
    let unique = UUID().uuidString.prefix(8).lowercased()
    let supplied = [
      "UNISYNC_CANVAS_API_TOKEN": "canvas-token-\(unique)-L3ak",
      "UNISYNC_COGNITO_USER_POOL_ID": "ap-northeast-2_leak\(unique)",
      "UNISYNC_COGNITO_CLIENT_ID": "client-\(unique)-Qz9w",
    ]
    let log = workspace.directory.appendingPathComponent("aws.log").path
    workspace.environment.merge(supplied) { $1 }
    workspace.environment["RUNBOOK_AWS_LOG"] = log

    /// The supplied values, and every value Secrets Manager holds now (what a run stored).
    func secrets() async throws -> [String: String] {
      var values = supplied
      let list = try await workspace.aws(["secretsmanager", "list-secrets"])
      for entry in (list as? [String: Any])?["SecretList"] as? [[String: Any]] ?? [] {
        guard let name = entry["Name"] as? String else { continue }
        let secret = try await workspace.aws([
          "secretsmanager", "get-secret-value", "--secret-id", name,
        ])
        values[name] = (secret as? [String: Any])?["SecretString"] as? String
      }
      return values
    }
    func assertNoSecretOnDisk(_ when: String) async throws {
      let values = try await secrets()
      XCTAssertEqual(
        filesHolding(values, below: temporary), [], "secrets in TMPDIR \(when)")
      XCTAssertEqual(
        filesHolding(values, below: workspace.stateDirectory), [],
        "secrets in the state directory \(when)")
    }

    // Killed right after each create-secret returned (with --jobs 1, while the next one's value
    // was not yet asked for), until a run finishes: three kills, then the run that resumes.
    let counter = workspace.directory.appendingPathComponent("crash-counter").path
    var kills = 0
    var last: ToolRun?
    for _ in 0..<6 {
      try Data().write(to: URL(fileURLWithPath: counter))
      let run = try await workspace.run(
        ["run", "secrets", "--yes", "--jobs", "1"],
        environment: ["RUNBOOK_CRASH_AT": "1", "RUNBOOK_CRASH_COUNTER": counter])
      guard run.signaled, run.status == SIGKILL else {
        last = run
        break
      }
      kills += 1
      try await assertNoSecretOnDisk("after kill \(kills)")
    }
    XCTAssertEqual(kills, 3, "each of the three create-secret calls was a kill point")
    XCTAssertEqual(last?.status, 0, last?.summary ?? "no run finished")
    try await assertNoSecretOnDisk("after the run that resumed")
    let stored = try await SecretsStepTests.unisyncSecrets(workspace)
    XCTAssertEqual(stored, SecretsStepTests.names, "one of each")
    // The values went on standard input, never in a file's name.
    for call in loggedAWSCalls(log)
    where (call["argv"] as? [String])?.prefix(2) == ["secretsmanager", "create-secret"] {
      let argv = call["argv"] as? [String] ?? []
      let index = try XCTUnwrap(argv.firstIndex(of: "--secret-string"))
      XCTAssertEqual(argv[index + 1], "file:///dev/stdin")
    }
    // Nothing is left of the killed runs' private folders.
    let scratch = workspace.stateDirectory + "/scratch"
    XCTAssertEqual(
      (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? [], [],
      "the private folders of the killed runs are removed by the next run")
    XCTAssertEqual(
      (try? FileManager.default.contentsOfDirectory(atPath: temporary))?.filter {
        $0.hasPrefix("runbook-") && !$0.hasPrefix("runbook-run-")
      } ?? [], [], "no folder of secret files in TMPDIR")
  }
}
