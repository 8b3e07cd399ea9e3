import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

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

  /// A command's only secret goes on its standard input, read through `file:///dev/stdin`: the
  /// value never touches the disk. Its documents are still files.
  func testASoleSecretGoesOnStandardInputAndNoFileHoldsIt() throws {
    let secrets = SecretStore()
    secrets.set("db-password", "s3cr3t-Value!")
    let resolver = Resolver(aws: aws, secrets: secrets)
    let parent = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-unit-\(UUID().uuidString.prefix(8))"
    ).path
    try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: parent) }
    let scratch = ScratchFiles(in: parent)
    let command = Command.aws(
      "secretsmanager", "create-secret", "--secret-string", .secretFile("db-password"),
      "--policy", .document("policy", #"{"arn":"\#(ref: "ARN")"}"#))
    let invocation = try resolver.invocation(command, values: ["ARN": "arn:1"], scratch: scratch)

    XCTAssertEqual(Array(invocation.arguments[2...3]), ["--secret-string", "file:///dev/stdin"])
    XCTAssertEqual(invocation.standardInput, Data("s3cr3t-Value!".utf8))
    let documentArgument = try XCTUnwrap(invocation.arguments.last { $0.hasPrefix("file://") })
    let documentPath = String(documentArgument.dropFirst("file://".count))
    XCTAssertEqual(contents(of: documentPath), Data(#"{"arn":"arn:1"}"#.utf8))
    XCTAssertTrue(documentPath.hasPrefix(parent + "/"), documentPath)
    XCTAssertEqual(try filesHolding("s3cr3t-Value!", under: parent), [])

    scratch.removeAll()
    XCTAssertFalse(FileManager.default.fileExists(atPath: documentPath))
  }

  /// Two secrets in one command, or a secret beside a secret input, or a secret of a pipe's
  /// consumer: files, 0600 in a 0700 folder of the given parent, removed afterwards.
  func testSecretsThatCannotGoOnStandardInputAreFilesInAPrivateFolder() throws {
    let secrets = SecretStore()
    secrets.set("a", "value-of-a-1")
    secrets.set("b", "value-of-b-2")
    let resolver = Resolver(aws: aws, secrets: secrets)
    let parent = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-unit-\(UUID().uuidString.prefix(8))"
    ).path
    try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: parent) }
    let commands: [(Command, Bool)] = [
      (Command.aws("x", "put", "--a", .secretFile("a"), "--b", .secretFile("b")), true),
      (Command(tool: "aws", arguments: ["x", "put", .secretFile("a")], input: .secret("b")), true),
      (Command.aws("x", "put", "--a", .secretFile("a")), false),
    ]
    for (command, free) in commands {
      let scratch = ScratchFiles(in: parent)
      let invocation = try resolver.invocation(
        command, values: [:], scratch: scratch, standardInputFree: free)
      XCTAssertFalse(invocation.arguments.contains(Resolver.standardInputFile), "\(command)")
      let paths = invocation.arguments.filter { $0.hasPrefix("file://") }.map {
        String($0.dropFirst("file://".count))
      }
      XCTAssertFalse(paths.isEmpty, "\(command)")
      for path in paths {
        XCTAssertTrue(path.hasPrefix(parent + "/"), path)
        XCTAssertEqual(try permissions(of: path), 0o600)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        XCTAssertEqual(try permissions(of: folder), 0o700)
      }
      XCTAssertEqual(
        fileArguments(invocation).sorted(),
        command.input == .none && paths.count == 2
          ? ["value-of-a-1", "value-of-b-2"] : ["value-of-a-1"])
      scratch.removeAll()
      for path in paths { XCTAssertFalse(FileManager.default.fileExists(atPath: path)) }
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), [])
    }
  }

  /// The files under `folder` whose bytes contain `text`.
  private func filesHolding(_ text: String, under folder: String) throws -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: folder)
    var found: [String] = []
    while let name = enumerator?.nextObject() as? String {
      let data = contents(of: folder + "/" + name) ?? Data()
      if String(decoding: data, as: UTF8.self).contains(text) { found.append(name) }
    }
    return found
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
