import Foundation
import RunbookProcess
import RunbookAWS
import RunbookState
import RunbookEngine
import UniSyncRunbook
import RunbookCLI
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
