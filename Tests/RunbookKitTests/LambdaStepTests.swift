import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Guide 7: the commands the lambda step runs, without running them.
final class LambdaStepArgvTests: XCTestCase {
  static let values: [String: String] = [
    ContextValue.account: "123456789012", ContextValue.region: "ap-northeast-2",
    ContextValue.lineage: "L",
    ContextValue.runDirectory: "/tmp/run",
    "LAMBDA_ROLE_ARN": "arn:aws:iam::123456789012:role/unisync-lambda-execution-role",
    "ECS_SG": "sg-ecs", "SUBNET_PRIVATE_2A": "subnet-a", "SUBNET_PRIVATE_2C": "subnet-c",
  ]

  func actions() throws -> [Action] { LambdaStep().actions(for: try configuredDeployment()) }
  func action(_ name: String) throws -> Action {
    try XCTUnwrap(try actions().first { $0.name == name }, name)
  }

  func testActionsFollowTheGuideAndNeedNoQueueExports() throws {
    XCTAssertEqual(
      try actions().map(\.name),
      [
        "role", "role-AWSLambdaBasicExecutionRole", "role-AWSLambdaVPCAccessExecutionRole",
        "role-SQSAndSecretsManagerAccess", "package-dependencies", "package-handler-folder",
        "package-handler",
        "package-permissions", "package-times", "package-zip", "package-size", "function",
        "function-active",
        "function-code",
      ])
    let deployment = try configuredDeployment()
    XCTAssertEqual(
      Set(LambdaStep().requiredExports(for: deployment)),
      ["ECS_SG", "SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C"],
      "the SQS step comes after this one in the guide: the queues are named, not looked up")
    XCTAssertEqual(
      try actions().filter(\.ephemeral).map(\.name).filter { !$0.hasPrefix("package-") }, [])
    XCTAssertEqual(
      try actions().filter { $0.name.hasPrefix("package-") }.allSatisfy(\.ephemeral), true)
  }

  func testThePolicyCoversTheQueuesByNameAndThisDeploymentsSecrets() throws {
    let put = try action("role-SQSAndSecretsManagerAccess")
    let document = try XCTUnwrap(
      try jsonArgument(put.command, after: "--policy-document", with: Self.values) as? [String: Any]
    )
    let statements = try XCTUnwrap(document["Statement"] as? [[String: Any]])
    XCTAssertEqual(
      statements[0]["Resource"] as? [String],
      [
        "assignment-events-queue-dlq", "assignment-events-queue", "submission-events-queue",
        "task-creation-queue",
        "llm-analysis-queue",
      ].map { "arn:aws:sqs:ap-northeast-2:123456789012:\($0)" })
    XCTAssertTrue((statements[0]["Action"] as? [String] ?? []).contains("sqs:ReceiveMessage"))
    XCTAssertEqual(statements[1]["Action"] as? [String], ["secretsmanager:GetSecretValue"])
    XCTAssertEqual(
      statements[1]["Resource"] as? [String],
      ["arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/*"])
    let trust = try jsonArgument(try action("role").command, after: "--assume-role-policy-document")
    XCTAssertEqual(
      (((trust as? [String: Any])?["Statement"] as? [[String: Any]])?.first?["Principal"]
        as? [String: String])?["Service"],
      "lambda.amazonaws.com")
  }

  /// pip into a fresh folder, the handler copied in, fixed permissions and times, zipped from inside.
  func testPackageIsBuiltInTheRunFolderTheSameWayEveryTime() throws {
    let deployment = try configuredDeployment()
    let source = URL(fileURLWithPath: deployment.baseDirectory).deletingLastPathComponent()
      .appendingPathComponent("examples/canvas-sync-lambda").path
    func argv(_ name: String) throws -> [String] {
      let command = try action(name).command
      return [command.tool] + command.arguments.map { render($0, with: Self.values) }
    }
    XCTAssertEqual(
      try argv("package-dependencies"),
      [
        "python3", "-m", "pip", "install", "--no-compile", "--disable-pip-version-check",
        "--no-input", "--platform", "manylinux2014_x86_64", "--implementation", "cp",
        "--python-version", "3.11", "--only-binary=:all:", "--requirement",
        source + "/requirements.txt", "--target", "/tmp/run/package",
      ])
    XCTAssertEqual(try argv("package-handler-folder"), ["mkdir", "-p", "/tmp/run/package/src"])
    XCTAssertEqual(
      try argv("package-handler"),
      ["cp", source + "/src/handler.py", "/tmp/run/package/src/handler.py"])
    XCTAssertEqual(
      try argv("package-permissions"), ["chmod", "-R", "u=rwX,go=rX", "/tmp/run/package"])
    XCTAssertEqual(
      try argv("package-times"),
      ["find", "/tmp/run/package", "-exec", "touch", "-h", "-d", "1980-01-02T00:00:00", "{}", "+"])
    XCTAssertEqual(
      try argv("package-zip"),
      ["zip", "-X", "-D", "-r", "-q", "/tmp/run/canvas-sync-lambda.zip", "."])
    XCTAssertEqual(
      try action("package-zip").command.workingDirectory.map { render($0, with: Self.values) },
      "/tmp/run/package")
    XCTAssertEqual(LambdaStep.handlerFile("src.handler.lambda_handler"), "src/handler.py")
    XCTAssertEqual(LambdaStep.handlerFile("handler.main"), "handler.py")
  }

  func testFunctionHasTheGuidesSettingsAndTheVPCItsPolicyIsFor() throws {
    let create = try action("function")
    let command = create.command
    func value(_ option: String) throws -> String {
      render(try XCTUnwrap(command.argument(after: option), option), with: Self.values)
    }
    XCTAssertEqual(try value("--function-name"), "canvas-sync-lambda")
    XCTAssertEqual(try value("--runtime"), "python3.11")
    XCTAssertEqual(try value("--role"), Self.values["LAMBDA_ROLE_ARN"])
    XCTAssertEqual(try value("--handler"), "src.handler.lambda_handler")
    XCTAssertEqual(try value("--zip-file"), "fileb:///tmp/run/canvas-sync-lambda.zip")
    XCTAssertEqual(try value("--timeout"), "300")
    XCTAssertEqual(try value("--memory-size"), "512")
    XCTAssertEqual(
      try jsonArgument(command, after: "--environment") as? NSDictionary,
      [
        "Variables": [
          // The function is outside the Service Connect mesh: the name that resolves in the VPC.
          "USER_SERVICE_URL": "http://unisync-user-service.unisync.internal:8081",
          "CANVAS_API_BASE_URL": "https://canvas.instructure.com/api/v1",
        ]
      ])
    XCTAssertEqual(
      try jsonArgument(command, after: "--vpc-config", with: Self.values) as? NSDictionary,
      ["SubnetIds": ["subnet-a", "subnet-c"], "SecurityGroupIds": ["sg-ecs"]])
    XCTAssertEqual(
      Set(create.after),
      [
        "package-size", "role-AWSLambdaBasicExecutionRole", "role-AWSLambdaVPCAccessExecutionRole",
        "role-SQSAndSecretsManagerAccess",
      ])
    let transient = try XCTUnwrap(create.transientErrors)
    XCTAssertTrue(
      transient.matches(
        "An error occurred (InvalidParameterValueException) when calling the CreateFunction operation: The role defined for the function cannot be assumed by Lambda."
      ))
    XCTAssertFalse(transient.matches("An error occurred (AccessDeniedException)"))
  }

  /// The code is replaced only when the package's SHA-256 (base64, as Lambda reports CodeSha256) differs.
  func testCodeIsUpdatedOnlyWhenThePackageDiffers() throws {
    let folder = try makeScratchFolder()
    try Data("abc".utf8).write(to: folder.appendingPathComponent("canvas-sync-lambda.zip"))
    var values = Self.values
    values[ContextValue.runDirectory] = folder.path
    let precheck = try XCTUnwrap(try action("function-code").precheck)
    XCTAssertEqual(
      precheck.upToDate("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=\n", values),
      "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=")
    XCTAssertNil(precheck.upToDate("AAAAv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=\n", values))
    values[ContextValue.runDirectory] = folder.appendingPathComponent("missing").path
    XCTAssertNil(precheck.upToDate("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=\n", values))
  }

  func testSHA256MatchesKnownDigests() {
    func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
    XCTAssertEqual(
      hex(SHA256.digest(Data())), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    XCTAssertEqual(
      hex(SHA256.digest(Data("abc".utf8))),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(
      hex(SHA256.digest(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    XCTAssertEqual(
      hex(SHA256.digest(Data(repeating: UInt8(ascii: "a"), count: 1000))),
      "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
  }
}
