import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The secrets step's commands and inputs, and the configuration they come from.
final class SecretsStepUnitTests: XCTestCase {
  static let configuration = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("runbooks/unisync-ecs.json")

  static let databaseServices = ["user-service", "course-service", "schedule-service"]

  func testValuesTravelOnlyAsFilesAndTheEncryptionKeyIsNeverOverwritten() throws {
    let deployment = try Deployment.load(from: Self.configuration.path)
    let step = SecretsStep()
    let all = step.actions(for: deployment)
    // One listing of what a destroy scheduled for deletion, a restore before each create.
    XCTAssertEqual(
      all.map(\.name),
      [
        "secrets-scheduled-for-deletion", "restore-encryption-key", "encryption-key",
        "restore-canvas-api-token", "canvas-api-token", "restore-cognito-config", "cognito-config",
      ] + Self.databaseServices.flatMap { ["restore-db-password-\($0)", "db-password-\($0)"] })
    let creates = all.filter { $0.capture != nil }
    XCTAssertEqual(
      creates.compactMap(\.capture?.export),
      ["ENCRYPTION_KEY_SECRET_ARN", "CANVAS_TOKEN_SECRET_ARN", "COGNITO_SECRET_ARN"]
        + Self.databaseServices.map {
          "DB_PASSWORD_SECRET_ARN_" + $0.uppercased().replacingOccurrences(of: "-", with: "_")
        })
    // The services' database passwords: made by the tool, never overwritten (the user has it).
    let generated = Dictionary(
      uniqueKeysWithValues: step.secretInputs(for: deployment).map { ($0.name, $0.source) })
    for (action, service) in zip(creates.suffix(3), Self.databaseServices) {
      XCTAssertEqual(generated[action.name], .randomPassword(length: 32))
      XCTAssertNil(action.overwrite)
      XCTAssertTrue(
        action.command.description.contains("--name unisync/db-\(service) "),
        action.command.description)
    }
    let actions = Array(creates.prefix(3))
    let needs = StepExecution.dependencies(of: all)
    for action in actions {
      XCTAssertEqual(
        needs[action.name], ["restore-\(action.name)", "secrets-scheduled-for-deletion"],
        "the three creates wait for nothing of each other")
    }
    for action in actions {
      XCTAssertEqual(action.command.secretReferences, [action.name])
      XCTAssertTrue(
        action.command.description.contains("--secret-string file://<secret:\(action.name)>"))
      XCTAssertEqual(action.alreadyDoneErrors, ["ResourceExistsException"])
      XCTAssertEqual(action.command.input, .none)
    }
    XCTAssertNil(actions[0].overwrite, "a new random key would make encrypted data unreadable")
    for action in actions.dropFirst() {
      let overwrite = try XCTUnwrap(action.overwrite).description
      XCTAssertTrue(
        overwrite.hasPrefix("aws secretsmanager put-secret-value --secret-id unisync/"), overwrite)
      XCTAssertTrue(overwrite.contains("--secret-string file://<secret:\(action.name)>"), overwrite)
    }
    let inputs = Dictionary(
      uniqueKeysWithValues: step.secretInputs(for: deployment).map { ($0.name, $0.source) })
    XCTAssertEqual(inputs["encryption-key"], .randomBase64(bytes: 32))
    XCTAssertEqual(
      inputs["canvas-api-token"],
      .supplied(
        fields: [SuppliedField(field: "value", environmentVariable: "UNISYNC_CANVAS_API_TOKEN")],
        file: nil))
    XCTAssertEqual(
      inputs["cognito-config"],
      .supplied(
        fields: [
          SuppliedField(field: "userPoolId", environmentVariable: "UNISYNC_COGNITO_USER_POOL_ID"),
          SuppliedField(field: "clientId", environmentVariable: "UNISYNC_COGNITO_CLIENT_ID"),
        ], file: nil))
  }

  func testConfigurationNamesAVariableForEveryFieldAndNoRDSPassword() throws {
    var root =
      try JSONSerialization.jsonObject(with: Data(contentsOf: Self.configuration)) as! [String: Any]
    var secrets = root["secrets"] as! [String: Any]
    secrets["rdsPassword"] = "unisync/rds-password"
    var cognito = secrets["cognito"] as! [String: Any]
    cognito["environment"] = [
      "userPoolId": "UNISYNC_COGNITO_USER_POOL_ID", "clientSecret": "X", "clientId": "not a name",
    ]
    secrets["cognito"] = cognito
    var canvas = secrets["canvasToken"] as! [String: Any]
    canvas["environment"] = [:] as [String: String]
    secrets["canvasToken"] = canvas
    root["secrets"] = secrets
    let data = try JSONSerialization.data(withJSONObject: root)
    let value = try JSONDecoder().decode(JSONValue.self, from: data)
    XCTAssertThrowsError(try Deployment.parse(value, file: "test.json", baseDirectory: "/")) {
      error in
      let text = "\(error)"
      for part in [
        "secrets.rdsPassword", "secrets.canvasToken.environment.value: is required",
        "secrets.cognito.environment.clientSecret: is not a field",
        "secrets.cognito.environment.clientId: 'not a name'",
      ] {
        XCTAssertTrue(text.contains(part), "\(part) not in:\n\(text)")
      }
    }
  }
}
