import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

/// How commands are shown (`plan`, audit log, failures) and turned into argv (runner).
final class CommandRenderingTests: XCTestCase {
  let aws = AWSSettings(
    region: "ap-northeast-2", endpointURL: "http://127.0.0.1:5000", profile: "ops")

  // MARK: - Command.description

  func testDescriptionQuotesWhatAShellWouldInterpret() {
    let command = Command(
      tool: "aws",
      arguments: [
        "ec2", "create-tags", "two words", "it's", #"say "hi""#, "$(id)", "a;b", "", "*", "`x`",
        "plain-word_1.2/3:4=5,6@7%8+9",
      ])
    XCTAssertEqual(
      command.description,
      #"aws ec2 create-tags 'two words' 'it'\''s' 'say "hi"' '$(id)' 'a;b' '' '*' '`x`' plain-word_1.2/3:4=5,6@7%8+9"#
    )
  }

  func testShellQuotedLeavesPlaceholdersBareButQuotesAnUnclosedAngle() {
    XCTAssertEqual(shellQuoted("<VPC_ID>"), "<VPC_ID>")
    XCTAssertEqual(shellQuoted("<in"), "'<in'")
    XCTAssertEqual(shellQuoted("a>b"), "a>b")
  }

  func testExportsShowAsPlaceholders() {
    let command = Command.aws(
      "ec2", "create-subnet", "--vpc-id", .ref("VPC_ID"), "--filter",
      "Name=vpc-id,Values=\(ref: "VPC_ID")",
      "--query", "Routes[?GatewayId=='\(ref: "IGW_ID")']")
    XCTAssertEqual(
      command.description,
      "aws ec2 create-subnet --vpc-id <VPC_ID> --filter Name=vpc-id,Values=<VPC_ID> --query 'Routes[?GatewayId=='\\''<IGW_ID>'\\'']'"
    )
    XCTAssertEqual(command.exportReferences, ["VPC_ID", "VPC_ID", "IGW_ID"])
  }

  func testSecretFileAndSecretInputAreMasked() {
    let command = Command(
      tool: "aws",
      arguments: [
        "secretsmanager", "create-secret", "--secret-string", .secretFile("db-password"),
      ],
      input: .secret("token"))
    XCTAssertEqual(
      command.description,
      "aws secretsmanager create-secret --secret-string file://<secret:db-password> <<< <secret:token>"
    )
    XCTAssertEqual(command.secretReferences, ["db-password", "token"])
  }

  func testDocumentShowsItsNameAndDisplayShowsItsContents() {
    let policy = Argument.document(
      "policy", #"{"Resource":"\#(ref: "QUEUE_ARN")","Effect":"Allow"}"#)
    let command = Command.aws("sqs", "set-queue-attributes", "--attributes", policy)
    XCTAssertEqual(command.description, "aws sqs set-queue-attributes --attributes file://<policy>")
    XCTAssertEqual(command.exportReferences, ["QUEUE_ARN"])

    let resolver = Resolver(aws: AWSSettings(region: "ap-northeast-2"), secrets: SecretStore())
    XCTAssertEqual(
      resolver.display(command, values: ["QUEUE_ARN": "arn:aws:sqs:ap-northeast-2:1:q"]),
      "aws sqs set-queue-attributes --attributes file://<policy> --region ap-northeast-2\n  <policy>:\n"
        + #"{"Resource":"arn:aws:sqs:ap-northeast-2:1:q","Effect":"Allow"}"#)
    XCTAssertEqual(
      resolver.display(command, values: [:]),
      "aws sqs set-queue-attributes --attributes file://<policy> --region ap-northeast-2\n  <policy>:\n"
        + #"{"Resource":"<QUEUE_ARN>","Effect":"Allow"}"#)
  }

  func testPipelineShowsBothCommands() {
    let command = Command.aws("ecr", "get-login-password").piped(
      into: Command(
        tool: "docker",
        arguments: ["login", "--username", "AWS", "--password-stdin", .ref("REGISTRY")]))
    XCTAssertEqual(
      command.description,
      "aws ecr get-login-password | docker login --username AWS --password-stdin <REGISTRY>")
    XCTAssertEqual(command.exportReferences, ["REGISTRY"])
    XCTAssertEqual(command.operation, "ecr get-login-password")
    XCTAssertEqual(command.pipedInto.first?.operation, "login")
  }

  // MARK: - Argument interpolation

  func testInterpolationMakesFragments() {
    let count = 3
    let argument: Argument = "a-\(ref: "X")-\(count)-b\(ref: "Y")"
    XCTAssertEqual(
      argument.fragments, [.text("a-"), .export("X"), .text("-3-b"), .export("Y")])
    XCTAssertEqual(argument.exportReferences, ["X", "Y"])
    XCTAssertEqual(argument.description, "a-<X>-3-b<Y>")

    let literal: Argument = "<VPC_ID>"
    XCTAssertEqual(literal.fragments, [.text("<VPC_ID>")], "a literal stays literal text")
    XCTAssertEqual(literal.exportReferences, [])
  }

  // MARK: - Resolver.display

  func testDisplayFillsKnownExportsAndAppendsGlobalOptions() {
    let resolver = Resolver(aws: aws, secrets: SecretStore())
    let command = Command.aws(
      "ec2", "create-route", "--route-table-id", .ref("RT_ID"), "--gateway-id", .ref("IGW_ID"))
    XCTAssertEqual(
      resolver.display(command, values: ["RT_ID": "rtb-0a1"]),
      "aws ec2 create-route --route-table-id rtb-0a1 --gateway-id <IGW_ID> --region ap-northeast-2 --endpoint-url http://127.0.0.1:5000 --profile ops"
    )
  }

  func testDisplayQuotesFilledValuesAndAddsNoAwsOptionsToOtherTools() {
    let resolver = Resolver(aws: aws, secrets: SecretStore())
    let command = Command.docker("tag", .ref("IMAGE"), "x")
    XCTAssertEqual(
      resolver.display(command, values: ["IMAGE": "a b"]), "docker tag 'a b' x")
  }

  func testDisplayWithoutEndpointOrProfileAddsOnlyRegion() {
    let resolver = Resolver(aws: AWSSettings(region: "eu-west-1"), secrets: SecretStore())
    XCTAssertEqual(
      resolver.display(.aws("sts", "get-caller-identity"), values: [:]),
      "aws sts get-caller-identity --region eu-west-1")
  }

  // MARK: - Resolver.invocation

  func testInvocationIsLiteralArgv() throws {
    let resolver = Resolver(aws: aws, secrets: SecretStore())
    let scratch = ScratchFiles()
    defer { scratch.removeAll() }
    let command = Command.aws(
      "ec2", "create-tags", "--resources", .ref("VPC_ID"), "--tags",
      "Key=Name,Value=\(ref: "NAME")", "$(id)")
    let invocation = try resolver.invocation(
      command, values: ["VPC_ID": "vpc-1", "NAME": "unisync; touch /tmp/x"], scratch: scratch)
    XCTAssertEqual(invocation.executable, "aws")
    XCTAssertEqual(
      invocation.arguments,
      [
        "ec2", "create-tags", "--resources", "vpc-1", "--tags",
        "Key=Name,Value=unisync; touch /tmp/x", "$(id)",
        "--region", "ap-northeast-2", "--endpoint-url", "http://127.0.0.1:5000", "--profile", "ops",
      ])
    XCTAssertNil(invocation.standardInput)
  }

  func testSecretFilesAre0600InA0700FolderAndRemovedAfterwards() throws {
    let secrets = SecretStore()
    secrets.set("db-password", "s3cr3t-Value!")
    let resolver = Resolver(aws: aws, secrets: secrets)
    let scratch = ScratchFiles()
    let command = Command.aws(
      "secretsmanager", "create-secret", "--secret-string", .secretFile("db-password"),
      "--policy", .document("policy", #"{"arn":"\#(ref: "ARN")"}"#))
    let invocation = try resolver.invocation(command, values: ["ARN": "arn:1"], scratch: scratch)

    XCTAssertFalse(invocation.arguments.contains { $0.contains("s3cr3t-Value!") })
    let secretArgument = try XCTUnwrap(invocation.arguments.first { $0.hasPrefix("file://") })
    let secretPath = String(secretArgument.dropFirst("file://".count))
    let documentArgument = try XCTUnwrap(invocation.arguments.last { $0.hasPrefix("file://") })
    let documentPath = String(documentArgument.dropFirst("file://".count))
    XCTAssertNotEqual(secretPath, documentPath)
    XCTAssertEqual(contents(of: secretPath), Data("s3cr3t-Value!".utf8))
    XCTAssertEqual(contents(of: documentPath), Data(#"{"arn":"arn:1"}"#.utf8))
    XCTAssertEqual(try permissions(of: secretPath), 0o600)
    XCTAssertEqual(try permissions(of: documentPath), 0o600)
    let folder = URL(fileURLWithPath: secretPath).deletingLastPathComponent().path
    XCTAssertEqual(URL(fileURLWithPath: documentPath).deletingLastPathComponent().path, folder)
    XCTAssertEqual(try permissions(of: folder), 0o700)

    scratch.removeAll()
    XCTAssertFalse(FileManager.default.fileExists(atPath: secretPath))
    XCTAssertFalse(FileManager.default.fileExists(atPath: documentPath))
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder))
  }

  func testSecretInputGoesToStandardInputOnly() throws {
    let secrets = SecretStore()
    secrets.set("token", "tok-123456")
    let resolver = Resolver(aws: aws, secrets: secrets)
    let scratch = ScratchFiles()
    defer { scratch.removeAll() }
    let invocation = try resolver.invocation(
      Command(tool: "docker", arguments: ["login", "--password-stdin"], input: .secret("token")),
      values: [:], scratch: scratch)
    XCTAssertEqual(invocation.arguments, ["login", "--password-stdin"])
    XCTAssertEqual(invocation.standardInput, Data("tok-123456".utf8))
  }

  func testUnknownExportOrSecretIsMissingValue() {
    let resolver = Resolver(aws: aws, secrets: SecretStore())
    let scratch = ScratchFiles()
    defer { scratch.removeAll() }
    let missingExport = assertThrowsNow(MissingValue.self) {
      try resolver.invocation(
        .aws("ec2", "x", "--vpc-id", .ref("VPC_ID")), values: ["OTHER": "1"], scratch: scratch)
    }
    XCTAssertEqual(missingExport, MissingValue(name: "VPC_ID", isSecret: false))
    let missingSecret = assertThrowsNow(MissingValue.self) {
      try resolver.invocation(.aws("x", "y", .secretFile("key")), values: [:], scratch: scratch)
    }
    XCTAssertEqual(missingSecret, MissingValue(name: "key", isSecret: true))
    let missingInput = assertThrowsNow(MissingValue.self) {
      try resolver.invocation(
        Command(tool: "docker", arguments: ["login"], input: .secret("token")), values: [:],
        scratch: scratch)
    }
    XCTAssertEqual(missingInput, MissingValue(name: "token", isSecret: true))
  }

  func testSecretStoreMasksEveryKnownValueOfFourCharactersOrMore() {
    let secrets = SecretStore()
    secrets.set("a", "hunter2hunter2")
    secrets.set("b", "abc")
    XCTAssertEqual(
      secrets.mask("password hunter2hunter2 and abc"), "password *** and abc")
  }
}
