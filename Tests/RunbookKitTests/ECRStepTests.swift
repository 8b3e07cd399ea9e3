import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Guide 5: the commands the ecr step runs, without running them.
final class ECRStepArgvTests: XCTestCase {
  static let services = ["api-gateway", "user-service", "course-service", "schedule-service"]

  func action(_ deployment: Deployment, _ name: String) throws -> Action {
    try XCTUnwrap(ECRStep().actions(for: deployment).first { $0.name == name }, name)
  }

  func testActionsFollowTheGuideAndBuildsRunSideBySide() throws {
    let deployment = try configuredDeployment()
    let actions = ECRStep().actions(for: deployment)
    XCTAssertEqual(
      actions.map(\.name),
      Self.services.map { "repository-\($0)" } + ["login", "image-tag"]
        + Self.services.flatMap { ["build-\($0)", "push-\($0)", "push-latest-\($0)"] })
    let needs = StepExecution.dependencies(of: actions)
    for service in Self.services {
      XCTAssertEqual(
        needs["build-\(service)"], ["image-tag"], "builds wait for nothing but the tag")
      XCTAssertEqual(
        needs["push-\(service)"],
        ["image-tag", "login", "repository-\(service)", "build-\(service)"])
      XCTAssertEqual(
        needs["push-latest-\(service)"], ["login", "build-\(service)", "push-\(service)"])
    }
    XCTAssertEqual(
      actions.filter(\.ephemeral).map(\.name), ["login"] + Self.services.map { "build-\($0)" })
    XCTAssertEqual(
      Set(ECRStep().producedExports(for: deployment)),
      Set(
        ["IMAGE_TAG"]
          + Self.services.flatMap { service -> [String] in
            let suffix = service.uppercased().replacingOccurrences(of: "-", with: "_")
            return ["REPO_URI_\(suffix)", "IMAGE_DIGEST_\(suffix)"]
          }))
    XCTAssertEqual(ECRStep().requiredExports(for: deployment), [])
  }

  func testRepositoryScansOnPushIsTaggedAndFoundByItsLineageTag() throws {
    let deployment = try configuredDeployment()
    let action = try action(deployment, "repository-user-service")
    XCTAssertEqual(
      action.command.arguments.prefix(4).map { render($0, with: [:]) },
      ["ecr", "create-repository", "--repository-name", "unisync/user-service"])
    XCTAssertEqual(
      try jsonArgument(action.command, after: "--image-scanning-configuration") as? [String: Bool],
      ["scanOnPush": true])
    let tags =
      try jsonArgument(action.command, after: "--tags", with: [ContextValue.lineage: "L"])
      as? [[String: String]]
    XCTAssertEqual(
      tags?.first { $0["Key"] == "runbook:action" }?["Value"], "ecr/repository-user-service")
    XCTAssertEqual(action.alreadyDoneErrors, ["RepositoryAlreadyExistsException"])
    // What a killed run made is found by its lineage tag; any repository of the name only with
    // --adopt.
    let own = try XCTUnwrap(action.lookup?.command)
    let values = [
      ContextValue.account: "123456789012", ContextValue.region: "ap-northeast-2",
      ContextValue.lineage: "L",
    ]
    XCTAssertEqual(
      own.arguments.prefix(4).map { render($0, with: values) },
      [
        "ecr", "list-tags-for-resource", "--resource-arn",
        "arn:aws:ecr:ap-northeast-2:123456789012:repository/unisync/user-service",
      ])
    XCTAssertEqual(
      render(try XCTUnwrap(own.argument(after: "--query")), with: values),
      "tags[?Key=='runbook:lineage' && Value=='L'] && '123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/unisync/user-service'"
    )
    XCTAssertEqual(action.lookup?.notFoundErrors, ["RepositoryNotFoundException"])
    XCTAssertEqual(
      render(try XCTUnwrap(action.adoptLookup?.command.argument(after: "--query")), with: [:]),
      "repositories[?repositoryName=='unisync/user-service'].repositoryUri")
    let capture = try XCTUnwrap(action.capture)
    XCTAssertTrue(
      capture.accepts("123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/unisync/user-service"))
    XCTAssertFalse(
      capture.accepts("123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/unisync/user-service2"))
  }

  /// `aws ecr get-login-password | docker login --password-stdin REGISTRY`: one command, two
  /// processes; the token is neither an argument nor a secret the tool holds.
  func testLoginIsOnePipelineAndTheTokenIsNeverAnArgument() throws {
    let deployment = try configuredDeployment()
    let login = try action(deployment, "login").command
    XCTAssertEqual(login.tool, "aws")
    XCTAssertEqual(login.arguments.map { render($0, with: [:]) }, ["ecr", "get-login-password"])
    let consumer = try XCTUnwrap(login.pipedInto.first)
    XCTAssertEqual(consumer.tool, "docker")
    XCTAssertEqual(
      consumer.arguments.map { render($0, with: [:]) },
      ["login", "--username", "AWS", "--password-stdin", "127.0.0.1:5000"])
    XCTAssertEqual(login.secretReferences, [])
    XCTAssertEqual(
      login.description,
      "aws ecr get-login-password | docker login --username AWS --password-stdin 127.0.0.1:5000")
  }

  func testWithoutARegistryImagesGoToTheECRHostOfTheAccount() throws {
    var deployment = try configuredDeployment()
    deployment.registry = nil
    let values = [
      ContextValue.account: "111122223333", ContextValue.region: "eu-west-1",
      "IMAGE_TAG": "abc1234",
    ]
    let login = try action(deployment, "login").command
    XCTAssertEqual(
      render(try XCTUnwrap(login.pipedInto.first?.arguments.last), with: values),
      "111122223333.dkr.ecr.eu-west-1.amazonaws.com")
    let push = try action(deployment, "push-api-gateway")
    XCTAssertEqual(
      push.command.arguments.map { render($0, with: values) },
      ["push", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/unisync/api-gateway:abc1234"])
    XCTAssertFalse(
      try XCTUnwrap(push.lookup).command.arguments.contains(.text("--insecure")),
      "ECR is reached over TLS")
    let local = try action(try configuredDeployment(), "push-api-gateway")
    XCTAssertTrue(
      try XCTUnwrap(local.lookup).command.arguments.contains(.text("--insecure")),
      "a loopback registry speaks HTTP")
  }

  func testBuildTagsTheImageTwiceFromItsContext() throws {
    let deployment = try configuredDeployment()
    let build = try action(deployment, "build-course-service").command
    XCTAssertEqual(
      build.arguments.map { render($0, with: ["IMAGE_TAG": "t1"]) },
      [
        "build", "--platform", "linux/amd64", "--tag", "127.0.0.1:5000/unisync/course-service:t1",
        "--tag",
        "127.0.0.1:5000/unisync/course-service:latest",
        URL(fileURLWithPath: deployment.baseDirectory).deletingLastPathComponent()
          .appendingPathComponent("examples/services/course-service").path,
      ])
  }

  func testImageTagIsTheGitCommitElseTheTimeOrTheOption() throws {
    let deployment = try configuredDeployment()
    let tag = try action(deployment, "image-tag")
    XCTAssertEqual(tag.command.description, "date -u +%Y%m%d%H%M%S")
    XCTAssertTrue(try XCTUnwrap(tag.capture).accepts("20250102030405"))
    let precheck = try XCTUnwrap(tag.precheck)
    XCTAssertEqual(
      Array(precheck.command.description.split(separator: " ").suffix(3)),
      ["rev-parse", "--short", "HEAD"])
    XCTAssertTrue(
      precheck.command.description.hasSuffix(
        "/examples/services/api-gateway rev-parse --short HEAD"))
    XCTAssertEqual(precheck.upToDate("4acc735\n", [:]), "4acc735")
    XCTAssertNil(precheck.upToDate("fatal: not a git repository\n", [:]))

    var tagged = deployment
    tagged.imageTag = "v1.2.3"
    let given = try action(tagged, "image-tag")
    XCTAssertEqual(given.command.description, "echo v1.2.3")
    XCTAssertNil(given.precheck)
    XCTAssertTrue(try XCTUnwrap(given.capture).accepts("v1.2.3"))
  }

  func testPushRecordsTheDigestAndAnInterruptedPushIsFoundInTheRegistry() throws {
    let deployment = try configuredDeployment()
    let push = try action(deployment, "push-user-service")
    let digest = "sha256:" + String(repeating: "0a", count: 32)
    let output = """
      The push refers to repository [127.0.0.1:5000/unisync/user-service]
      6b645c8454bc: Layer already exists
      4acc735: digest: \(digest) size: 524

      """
    let capture = try XCTUnwrap(push.capture)
    XCTAssertEqual(capture.export, "IMAGE_DIGEST_USER_SERVICE")
    XCTAssertEqual(capture.value(in: output), digest)
    XCTAssertTrue(capture.accepts(capture.value(in: output)))
    let lookup = try XCTUnwrap(push.lookup)
    XCTAssertEqual(
      lookup.command.arguments.map { render($0, with: ["IMAGE_TAG": "t"]) },
      ["manifest", "inspect", "--insecure", "--verbose", "127.0.0.1:5000/unisync/user-service:t"])
    XCTAssertEqual(lookup.notFoundErrors, ["no such manifest"])
    let manifest = """
      {"Ref": "x", "Descriptor": {"mediaType": "m", "digest": "\(digest)", "size": 524},
       "SchemaV2Manifest": {"config": {"digest": "sha256:\(String(repeating: "1", count: 64))"}}}
      """
    XCTAssertEqual(extractedValues(try XCTUnwrap(lookup.extract), in: manifest).first, digest)

    let latest = try action(deployment, "push-latest-user-service")
    let precheck = try XCTUnwrap(latest.precheck)
    XCTAssertEqual(
      precheck.command.arguments.map { render($0, with: [:]) },
      [
        "manifest", "inspect", "--insecure", "--verbose",
        "127.0.0.1:5000/unisync/user-service:latest",
      ])
    XCTAssertEqual(precheck.upToDate(manifest, ["IMAGE_DIGEST_USER_SERVICE": digest]), digest)
    XCTAssertNil(precheck.upToDate(manifest, ["IMAGE_DIGEST_USER_SERVICE": "sha256:other"]))
  }
}
