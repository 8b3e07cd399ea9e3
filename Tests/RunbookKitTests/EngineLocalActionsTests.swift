import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The engine features the image, service and function steps use: ephemeral actions, prechecks on
/// reads, values extracted from longer output, lookups that may find nothing, transient errors,
/// working directories and the run's own folder.
final class EngineLocalActionsTests: XCTestCase {
  /// A login (ephemeral read) and a push after it, as the ecr step has them.
  func loginAndPush() -> [Action] {
    [
      Action(
        name: "login", summary: "log in", effect: .read,
        command: Command.aws("ecr", "get-login-password").piped(
          into: .docker("login", "--password-stdin", "r")),
        ephemeral: true),
      Action(
        name: "push", summary: "push", effect: .write, command: .docker("push", "r/x:1"),
        capture: Capture(
          export: "DIGEST", pattern: "^sha256:[0-9a-f]+$", extract: "digest: (sha256:[0-9a-f]+)"),
        after: ["login"]),
      Action(
        name: "other", summary: "other", effect: .write, command: .aws("test", "create-other")),
    ]
  }

  func testAnEphemeralActionRunsAgainWhileAnActionNeedingItHasWorkLeft() async throws {
    let fixture = try EngineFixture(test: self)
    let step = TestStep("s", loginAndPush())
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "ecr", "get-login-password", reply: .ok("token"))
    fixture.runner.on("docker", "login", reply: .ok("Login Succeeded"))
    fixture.runner.on("docker", "push", reply: .ok("x\n1: digest: sha256:abc123 size: 524\n"))
    try fixture.seedCheckpoint {
      $0.actions["s/login"] = ActionRecord(status: .done, outcome: .read, value: nil, export: nil)
      $0.actions["s/other"] = ActionRecord(
        status: .done, outcome: .created, value: nil, export: nil)
    }
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(
      fixture.runner.calls("docker", "login").count, 1, "the login ran again before the push")
    XCTAssertEqual(
      try fixture.checkpoint().exports["DIGEST"], "sha256:abc123",
      "the digest came out of the push output")
    XCTAssertEqual(fixture.runner.calls("aws", "test").count, 0)
  }

  func testAnEphemeralActionIsNotRunWhenNothingNeedingItIsLeft() async throws {
    let fixture = try EngineFixture(test: self)
    let step = TestStep("s", loginAndPush())
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-other", reply: .ok())
    try fixture.seedCheckpoint {
      $0.actions["s/login"] = ActionRecord(status: .done, outcome: .read, value: nil, export: nil)
      $0.actions["s/push"] = ActionRecord(
        status: .done, outcome: .created, value: "sha256:1", export: "DIGEST")
    }
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map(\.description),
      ["aws test create-other --region ap-northeast-2"])
  }

  func testEphemeralActionsChainThroughEachOther() throws {
    let actions = [
      Action(name: "a", summary: "a", effect: .read, command: .aws("t", "a"), ephemeral: true),
      Action(
        name: "b", summary: "b", effect: .read, command: .aws("t", "b"), after: ["a"],
        ephemeral: true),
      Action(name: "c", summary: "c", effect: .write, command: .aws("t", "c"), after: ["b"]),
    ]
    var checkpoint = Checkpoint(deployment: "d", region: "r")
    for name in ["a", "b"] {
      checkpoint.actions["s/\(name)"] = ActionRecord(
        status: .done, outcome: .read, value: nil, export: nil)
    }
    let dependencies = StepExecution.dependencies(of: actions)
    XCTAssertEqual(StepExecution.done(actions, dependencies, checkpoint, "s"), [])
    checkpoint.actions["s/c"] = ActionRecord(
      status: .done, outcome: .created, value: nil, export: nil)
    XCTAssertEqual(StepExecution.done(actions, dependencies, checkpoint, "s"), ["a", "b", "c"])
  }

  func testAPrecheckOnAReadMakesItsCommandUnnecessary() async throws {
    let fixture = try EngineFixture(test: self)
    let read = Action(
      name: "tag", summary: "tag", effect: .read, command: .aws("test", "fallback"),
      capture: Capture(export: "TAG", pattern: "^[a-z0-9]+$"),
      precheck: Precheck(.aws("test", "preferred"), rule: "preferred") { output, _ in
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
      })
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "preferred", reply: .ok("abc1234"))
    _ = try await fixture.engine([TestStep("s", [read])]).run([TestStep("s", [read])])
    XCTAssertEqual(try fixture.checkpoint().exports["TAG"], "abc1234")
    XCTAssertEqual(fixture.runner.calls("aws", "test", "fallback").count, 0)

    let second = try EngineFixture(test: self)
    second.runner.answerCallerIdentity()
    second.runner.on(
      "aws", "test", "preferred", reply: .failure("fatal: not a git repository", status: 128))
    second.runner.on("aws", "test", "fallback", reply: .ok("20250101"))
    _ = try await second.engine([TestStep("s", [read])]).run([TestStep("s", [read])])
    XCTAssertEqual(try second.checkpoint().exports["TAG"], "20250101")
  }

  /// A precheck whose program is not installed decides nothing (no git: the image tag is the time).
  func testAPrecheckThatCannotStartDecidesNothing() async throws {
    let fixture = try EngineFixture(test: self)
    let read = Action(
      name: "tag", summary: "tag", effect: .read, command: .aws("test", "fallback"),
      capture: Capture(export: "TAG", pattern: "^[0-9]+$"),
      precheck: Precheck(Command(tool: "no-such-tool-here", arguments: []), rule: "r") { _, _ in
        "never"
      })
    let runner = MissingToolRunner(fixture.runner)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "fallback", reply: .ok("20250101"))
    let engine = Engine(
      deployment: fixture.deployment, state: fixture.state, catalogue: [TestStep("s", [read])],
      runner: runner,
      reporter: fixture.reporter, prompter: nil,
      aws: AWSSettings(region: fixture.deployment.region),
      options: RunOptions(assumeYes: true, commandLine: "runbook test"),
      environment: ["PATH": stubToolPath])
    _ = try await engine.run([TestStep("s", [read])])
    XCTAssertEqual(try fixture.checkpoint().exports["TAG"], "20250101")
  }

  func testCaptureExtractFindsTheValueOrReportsTheOutput() {
    let capture = Capture(
      export: "D", pattern: "^sha256:[0-9a-f]{4}$", extract: "digest: (sha256:[0-9a-f]+)")
    XCTAssertEqual(
      capture.value(in: "Preparing\nPushed\nv1: digest: sha256:beef size: 524\n"), "sha256:beef")
    XCTAssertEqual(capture.value(in: "no digest here"), "")
    XCTAssertFalse(capture.accepts(capture.value(in: "no digest here")))
    XCTAssertEqual(Capture(export: nil, pattern: ".+").value(in: "  vpc-1 \n"), "vpc-1")
  }

  /// An interrupted write whose lookup says "nothing there" (a failing command with a known message)
  /// runs again; one whose lookup finds the value recovers it, extracted from the output.
  func testLookupNotFoundErrorsAndExtractedValues() async throws {
    func push() -> Action {
      Action(
        name: "push", summary: "push", effect: .write, command: .docker("push", "r/x:1"),
        capture: Capture(
          export: "DIGEST", pattern: "^sha256:[0-9a-f]+$", extract: "digest: (sha256:[0-9a-f]+)"),
        lookup: Lookup(
          .docker("manifest", "inspect", "--verbose", "r/x:1"),
          extract: #""digest": "(sha256:[0-9a-f]+)""#,
          notFoundErrors: ["no such manifest"]))
    }
    for found in [false, true] {
      let fixture = try EngineFixture(test: self)
      let step = TestStep("s", [push()])
      let checkpoint = try fixture.seedCheckpoint()
      try fixture.journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .intent, action: "s/push",
          command: "docker push r/x:1"))
      fixture.runner.answerCallerIdentity()
      fixture.runner.on(
        "docker", "manifest",
        reply: found
          ? .ok(
            #"{"Descriptor": {"digest": "sha256:feed", "size": 1}, "SchemaV2Manifest": {"config": {"digest": "sha256:0000"}}}"#
          )
          : .failure("no such manifest: r/x:1", status: 1))
      fixture.runner.on("docker", "push", reply: .ok("1: digest: sha256:abcd size: 1"))
      _ = try await fixture.engine([step]).run([step])
      XCTAssertEqual(
        try fixture.checkpoint().exports["DIGEST"], found ? "sha256:feed" : "sha256:abcd")
      XCTAssertEqual(fixture.runner.calls("docker", "push").count, found ? 0 : 1)
      XCTAssertEqual(
        try fixture.checkpoint().record("s", "push")?.outcome, found ? .recovered : .created)
    }
  }

  func testTransientErrorsAreRetriedForABoundedTimeThenReported() async throws {
    let create = Action(
      name: "function", summary: "create function", effect: .write,
      command: .aws("lambda", "create-function"),
      capture: Capture(export: "FN", pattern: "^fn-[0-9]+$"), lookup: nil,
      transientErrors: TransientErrors(
        ["cannot be assumed by Lambda"], seconds: 0.5, intervalSeconds: 0.05))
    let assumed = ScriptedRunner.Reply.awsError(
      "InvalidParameterValueException", operation: "CreateFunction",
      message: "The role defined for the function cannot be assumed by Lambda.")

    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      ["aws", "lambda", "create-function"], replies: [assumed, assumed, .ok("fn-1")])
    _ = try await fixture.engine([TestStep("s", [create])]).run([TestStep("s", [create])])
    XCTAssertEqual(try fixture.checkpoint().exports["FN"], "fn-1")
    XCTAssertEqual(fixture.reporter.retries.map(\.action), ["function", "function"])

    let stuck = try EngineFixture(test: self)
    stuck.runner.answerCallerIdentity()
    stuck.runner.on("aws", "lambda", "create-function", reply: assumed)
    let started = Date()
    do {
      _ = try await withDeadline(120) {
        try await stuck.engine([TestStep("s", [create])]).run([TestStep("s", [create])])
      }
      XCTFail("a failure that does not clear up must be reported")
    } catch let failure as StepFailure {
      XCTAssertTrue(failure.reason.contains("cannot be assumed"), failure.reason)
    }
    // Retried until the 0.5 s were (nearly) over, never more often than every 0.05 s; how many
    // attempts fit depends on the machine, so only the bounds are checked.
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.45)
    let attempts = stuck.runner.calls("aws", "lambda").count
    XCTAssertTrue((1...11).contains(attempts), "\(attempts) attempts in 0.5 s at 0.05 s apart")
    XCTAssertEqual(stuck.reporter.retries.count, attempts - 1)

    let other = try EngineFixture(test: self)
    other.runner.answerCallerIdentity()
    other.runner.on(
      "aws", "lambda", "create-function",
      reply: .awsError("AccessDenied", operation: "CreateFunction", message: "not allowed"))
    do {
      _ = try await other.engine([TestStep("s", [create])]).run([TestStep("s", [create])])
      XCTFail("expected a failure")
    } catch is StepFailure {}
    XCTAssertEqual(other.runner.calls("aws", "lambda").count, 1, "other errors are not retried")
  }

  func testTheRunFolderIsPrivateExistsDuringTheRunAndIsRemovedAfter() async throws {
    let fixture = try EngineFixture(test: self)
    let seen = Locked<(String, Int)?>(nil)
    let zip = Action(
      name: "zip", summary: "zip", effect: .read,
      command: Command(
        tool: "zip", arguments: ["-r", "\(ref: ContextValue.runDirectory)/f.zip", "."],
        workingDirectory: "\(ref: ContextValue.runDirectory)"))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("zip") { invocation in
      let directory = invocation.workingDirectory ?? ""
      let mode =
        (try? FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int)
        ?? -1
      seen.withLock { $0 = (directory, mode) }
      XCTAssertEqual(invocation.arguments, ["-r", directory + "/f.zip", "."])
      return .ok()
    }
    let step = TestStep("s", [zip])
    XCTAssertEqual(
      step.requiredExports(for: fixture.deployment), [], "the run folder is not an export")
    _ = try await fixture.engine([step]).run([step])
    let (directory, mode) = try XCTUnwrap(seen.withLock { $0 })
    // In the state directory, where the next run removes it should this one be killed.
    XCTAssertTrue(directory.hasPrefix(fixture.folder.path), directory)
    XCTAssertTrue(directory.contains("/scratch/run-"), directory)
    XCTAssertEqual(mode & 0o777, 0o700)
    XCTAssertFalse(FileManager.default.fileExists(atPath: directory), "removed when the run ends")
    XCTAssertEqual(
      zip.command.description, "cd <RUN_DIRECTORY> && zip -r '<RUN_DIRECTORY>/f.zip' .")
  }
}

/// The scripted runner, except that one program is not installed.
private final class MissingToolRunner: CommandRunner {
  let inner: ScriptedRunner
  init(_ inner: ScriptedRunner) { self.inner = inner }
  func run(_ invocation: Invocation) async throws -> ProcessOutput {
    if invocation.executable == "no-such-tool-here" {
      throw ProcessLaunchError.executableNotFound(invocation.executable)
    }
    return try await inner.run(invocation)
  }
  func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws -> PipelineOutput
  {
    try await inner.runPipeline(producer, into: consumer)
  }
}
