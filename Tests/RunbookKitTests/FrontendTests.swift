import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The command line end to end inside the process: exit statuses, messages and outputs, with a
/// scripted runner instead of `aws`.
final class FrontendTests: XCTestCase {
  /// Output, errors, runner and a state folder for one or more command lines.
  final class Session {
    let output = BufferOutput()
    let errors = BufferOutput()
    let runner: ScriptedRunner
    let stateDirectory: String
    let answers: Locked<[String]>
    let terminal: Bool

    init(
      test: XCTestCase, terminal: Bool = false, answers: [String] = [],
      file: StaticString = #filePath, line: UInt = #line
    ) throws {
      runner = ScriptedRunner(file: file, line: line)
      stateDirectory = try test.makeScratchFolder().appendingPathComponent("state").path
      self.answers = Locked(answers)
      self.terminal = terminal
    }

    var state: StateDirectory { StateDirectory(path: stateDirectory) }

    /// Runs `runbook -c local.json --state-dir DIR ARGS...`.
    func run(_ arguments: String..., runner: ScriptedRunner? = nil) async -> Int32 {
      let answers = self.answers
      let frontend = Frontend(
        environment: Frontend.Environment(
          output: output, errors: errors, inputIsTerminal: terminal,
          variables: ["TERM": "dumb", "PATH": stubToolPath],
          readLine: { answers.withLock { $0.isEmpty ? nil : $0.removeFirst() } },
          workingDirectory: packageRoot.path),
        runner: runner ?? self.runner)
      return await frontend.run(
        ["-c", "runbooks/local.json", "--state-dir", stateDirectory] + arguments)
    }
  }

  // MARK: - Refusals

  func testRunWithoutTerminalOrYesIsRefusedWithoutACall() async throws {
    let session = try Session(test: self)
    let status = await session.run("run", "network")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertEqual(session.runner.calls, [])
    XCTAssertEqual(
      session.errors.text,
      "error: 'run' changes AWS resources and needs confirmation: run it in a terminal, or pass --yes\n"
    )
    XCTAssertNil(try session.state.load())
  }

  func testUnknownStepIsAUsageError() async throws {
    let session = try Session(test: self)
    let status = await session.run("run", "--yes", "netwerk")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(
      session.errors.text.hasPrefix("error: unknown step 'netwerk' (steps: network security"),
      session.errors.text)
    XCTAssertEqual(session.runner.calls, [])
  }

  func testEverySectionOfTheGuideHasItsStepInGuideOrder() {
    XCTAssertEqual(Catalogue.steps.map(\.id), Catalogue.guideOrder)
  }

  func testBadOptionsAndConfigurationAreUsageErrors() async throws {
    let session = try Session(test: self)
    var status = await session.run("run", "--yes", "--jobs", "0")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(session.errors.text.contains("--jobs: '0' is not a number from 1 to 64"))
    status = await session.run("status", "--endpoint-url", "ftp://x")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(session.errors.text.contains("'ftp://x' is not an http(s) URL"))
    status = await session.run("status", "--region", "mars")
    XCTAssertEqual(status, ExitStatus.usage)
    status = await session.run("status", "-c", "runbooks/missing.json")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(
      session.errors.text.contains("runbooks/missing.json: cannot be read"), session.errors.text)
    XCTAssertEqual(session.runner.calls, [])
  }

  func testLockedStateDirectoryExitsThree() async throws {
    let session = try Session(test: self)
    try session.state.prepare()
    let lock = try session.state.lock(command: "runbook run network")
    defer { lock.release() }
    let status = await session.run("run", "--yes", "network")
    XCTAssertEqual(status, ExitStatus.locked)
    XCTAssertTrue(session.errors.text.contains("another run holds the lock (pid \(getpid())"))
    XCTAssertEqual(session.runner.calls, [])
  }

  func testCorruptCheckpointExitsTwoAndIsLeftAlone() async throws {
    let session = try Session(test: self)
    try session.state.prepare()
    writeFile(session.state.stateFile, contents: Data("{\"formatVer".utf8))
    for command in ["status", "env", "plan"] {
      let status = await session.run(command)
      XCTAssertEqual(status, ExitStatus.usage, command)
    }
    let status = await session.run("run", "--yes")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(session.errors.text.contains("not a usable checkpoint"))
    XCTAssertEqual(contents(of: session.state.stateFile), Data("{\"formatVer".utf8))
    XCTAssertEqual(session.runner.calls, [])
  }

  // MARK: - Help

  func testHelpTexts() async throws {
    let session = try Session(test: self)
    var status = await session.run("--help")
    XCTAssertEqual(status, ExitStatus.success)
    XCTAssertEqual(session.output.text, CLISpec.mainHelp())

    let noCommand = try Session(test: self)
    status = await noCommand.run()
    XCTAssertEqual(status, ExitStatus.usage, "no command is a usage error (after printing help)")

    let run = try Session(test: self)
    status = await run.run("run", "--help")
    XCTAssertEqual(status, ExitStatus.success)
    XCTAssertEqual(run.output.text, CLISpec.help(for: CLISpec.command("run")!))
    XCTAssertEqual(run.runner.calls, [])
  }

  // MARK: - run, status, env, plan

  func testRunYesCreatesTheNetworkOnceAndARerunDoesNothing() async throws {
    let session = try Session(test: self)
    answerNetwork(session.runner)
    let status = await session.run(
      "run", "--yes", "--endpoint-url", "http://127.0.0.1:4566", "network")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text + session.output.text)
    let writes = session.runner.callsAfterIdentity.filter {
      !$0.argv[2].hasPrefix("describe-")
    }
    XCTAssertEqual(
      writes.map { $0.argv[2] }.sorted(),
      [
        "allocate-address", "associate-route-table", "associate-route-table",
        "associate-route-table", "associate-route-table", "attach-internet-gateway",
        "create-internet-gateway", "create-nat-gateway", "create-route", "create-route",
        "create-route-table", "create-route-table", "create-subnet", "create-subnet",
        "create-subnet", "create-subnet", "create-vpc", "modify-vpc-attribute",
      ])
    for call in session.runner.calls {
      XCTAssertEqual(call.value(of: "--endpoint-url"), "http://127.0.0.1:4566", "\(call)")
      XCTAssertEqual(call.value(of: "--region"), "ap-northeast-2", "\(call)")
    }
    XCTAssertTrue(session.output.text.contains("finished in"), session.output.text)
    let checkpoint = try XCTUnwrap(try session.state.load())
    XCTAssertEqual(checkpoint.exports["VPC_ID"], "vpc-0a1")
    XCTAssertEqual(checkpoint.exports.count, 10)

    let quiet = ScriptedRunner()
    let again = await session.run("run", "--yes", "network", runner: quiet)
    XCTAssertEqual(again, ExitStatus.success)
    XCTAssertEqual(quiet.calls, [])
    XCTAssertTrue(session.output.text.contains("nothing to do: every action of network is done"))
  }

  func testTheSummaryTalliesEachStepWhenSeveralDidSomething() {
    var summary = RunSummary()
    summary.outcomes = [
      "network/vpc": .created, "network/subnet-a": .created, "network/nat-wait": .read,
      "sqs/dlq": .created, "sqs/dlq-arn": .read, "security/alb-sg": .alreadyDone,
    ]
    XCTAssertEqual(summary.tally(), "1 already done, 3 created, 2 read")
    XCTAssertEqual(summary.tally(step: "sqs"), "1 created, 1 read")
    // In the order of the run's steps, names padded to one column; a step with nothing is left out.
    XCTAssertEqual(
      summary.stepTallies(order: ["network", "security", "rds", "sqs"]),
      ["network:  2 created, 1 read", "security: 1 already done", "sqs:      1 created, 1 read"])
    summary.outcomes = ["network/vpc": .created]
    XCTAssertEqual(
      summary.stepTallies(order: ["network", "sqs"]), [], "one step: its tally is the total")
  }

  func testStepFailureExitsOneAndSaysWhatFailed() async throws {
    let session = try Session(test: self)
    session.runner.answerCallerIdentity()
    session.runner.on(
      "aws", "ec2", "create-vpc",
      reply: .awsError(
        "VpcLimitExceeded", operation: "CreateVpc",
        message: "The maximum number of VPCs has been reached."))
    let status = await session.run("run", "--yes", "--jobs", "1", "network")
    XCTAssertEqual(status, ExitStatus.stepFailed)
    XCTAssertTrue(
      session.errors.text.hasPrefix(
        "error: step 'network' failed at action 'vpc'\n  command: aws ec2 create-vpc"),
      session.errors.text)
    XCTAssertTrue(session.errors.text.contains("AWS error: VpcLimitExceeded"))
  }

  func testQuitAtThePromptExits130() async throws {
    let session = try Session(test: self, terminal: true, answers: ["maybe", "q"])
    session.runner.answerCallerIdentity()
    let status = await session.run("run", "network")
    XCTAssertEqual(status, ExitStatus.interrupted)
    XCTAssertEqual(session.runner.callsAfterIdentity, [])
    XCTAssertTrue(session.output.text.contains("please answer y, n, a or q"))
    XCTAssertTrue(session.errors.text.contains("interrupted (quit at the prompt)"))
  }

  func testStatusJSONHasTheDocumentedFields() async throws {
    let session = try Session(test: self)
    try session.state.prepare()
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2", lineage: "lin-7")
    checkpoint.account = "123456789012"
    checkpoint.serial = 4
    checkpoint.exports = ["VPC_ID": "vpc-0a1"]
    checkpoint.actions["network/vpc"] = ActionRecord(
      status: .done, outcome: .created, value: "vpc-0a1", export: "VPC_ID")
    checkpoint.lastFailure = FailureRecord(
      step: "network", action: "subnet-public-2a", message: "An error occurred (X)", at: "t")
    try session.state.save(checkpoint)

    let status = await session.run("status", "--json")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    let object = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(session.output.text.utf8)) as? [String: Any])
    XCTAssertEqual(
      Set(object.keys),
      [
        "schemaVersion", "deployment", "region", "account", "lineage", "serial", "updatedAt",
        "steps", "exports", "pendingManual", "lastFailure",
      ])
    XCTAssertEqual(object["schemaVersion"] as? Int, 1)
    XCTAssertEqual(object["deployment"] as? String, "unisync")
    XCTAssertEqual(object["account"] as? String, "123456789012")
    XCTAssertEqual(object["lineage"] as? String, "lin-7")
    XCTAssertEqual(object["serial"] as? Int, 4)
    XCTAssertEqual(object["exports"] as? [String: String], ["VPC_ID": "vpc-0a1"])
    XCTAssertEqual(
      (object["lastFailure"] as? [String: Any])?["action"] as? String, "subnet-public-2a")

    let steps = try XCTUnwrap(object["steps"] as? [[String: Any]])
    XCTAssertEqual(steps.compactMap { $0["id"] as? String }, Catalogue.steps.map(\.id))
    let network = try XCTUnwrap(steps.first)
    XCTAssertEqual(Set(network.keys), ["id", "section", "title", "status", "actions"])
    XCTAssertEqual(network["status"] as? String, "failed")
    let actions = try XCTUnwrap(network["actions"] as? [[String: Any]])
    let vpc = try XCTUnwrap(actions.first { $0["name"] as? String == "vpc" })
    XCTAssertEqual(vpc["status"] as? String, "done")
    XCTAssertEqual(vpc["kind"] as? String, "write")
    XCTAssertEqual(vpc["outcome"] as? String, "created")
    XCTAssertEqual(vpc["export"] as? String, "VPC_ID")
    XCTAssertEqual(vpc["value"] as? String, "vpc-0a1")
    let failed = try XCTUnwrap(actions.first { $0["name"] as? String == "subnet-public-2a" })
    XCTAssertEqual(failed["status"] as? String, "failed")
    let wait = try XCTUnwrap(actions.first { $0["name"] as? String == "nat-gateway-available" })
    XCTAssertEqual(wait["kind"] as? String, "wait")
    XCTAssertEqual(wait["status"] as? String, "pending")
    XCTAssertEqual(session.runner.calls, [])
  }

  func testEnvOutputReproducesExportsInBash() async throws {
    let session = try Session(test: self)
    try session.state.prepare()
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    let weird = #"it's "quoted" $HOME `id` $(id) \n; done"#
    checkpoint.exports = ["VPC_ID": "vpc-0a1", "WEIRD": weird, "EMPTY": ""]
    try session.state.save(checkpoint)

    let status = await session.run("env")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    let file = try makeScratchFolder().appendingPathComponent("env.sh")
    try Data(session.output.text.utf8).write(to: file)
    let output = try await ProcessRunner().run(
      Invocation(
        executable: "bash",
        arguments: [
          "-c", #"set -u; eval "$(cat "$1")"; printf '%s|' "$VPC_ID" "$WEIRD" "$EMPTY""#, "bash",
          file.path,
        ]))
    XCTAssertEqual(output.termination, .exited(0), output.stderrText)
    XCTAssertEqual(output.stdoutText, "vpc-0a1|\(weird)||")
    XCTAssertEqual(session.runner.calls, [])
  }

  func testPlanStartsNoProcessAndListsEveryCommand() async throws {
    let session = try Session(test: self)
    let status = await session.run("plan", "network")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    XCTAssertEqual(session.runner.calls, [])
    let text = session.output.text
    let deployment = try localDeployment()
    let resolver = Resolver(aws: AWSSettings(region: deployment.region), secrets: SecretStore())
    for action in NetworkStep().actions(for: deployment) {
      XCTAssertTrue(text.contains(" \(action.name): \(action.summary)"), action.name)
      let shown = resolver.display(action.command, values: [ContextValue.region: deployment.region])
      XCTAssertTrue(text.contains("      " + shown), "\(action.name): \(shown)")
    }
    // Independently of the resolver: literal values, placeholders and the region are there.
    XCTAssertTrue(text.contains("aws ec2 create-vpc --cidr-block 10.0.0.0/16 --tag-specifications"))
    XCTAssertTrue(text.contains("--vpc-id <VPC_ID> --cidr-block 10.0.11.0/24"))
    XCTAssertTrue(text.contains("<RUNBOOK_LINEAGE>"))
    XCTAssertTrue(text.contains("--region ap-northeast-2"))
    XCTAssertTrue(text.contains("actions, 19 writes still to do"), text)

    let dryRun = try Session(test: self)
    let dryStatus = await dryRun.run("run", "--dry-run", "network")
    XCTAssertEqual(dryStatus, ExitStatus.success)
    XCTAssertEqual(dryRun.output.text, text)
    XCTAssertEqual(dryRun.runner.calls, [])
  }

  func testResetForgetsTheStep() async throws {
    let session = try Session(test: self)
    answerNetwork(session.runner)
    var status = await session.run("run", "--yes", "network")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    status = await session.run("reset", "network")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    let checkpoint = try XCTUnwrap(try session.state.load())
    XCTAssertEqual(checkpoint.exports, [:])
    XCTAssertEqual(checkpoint.actions, [:])
    XCTAssertEqual(
      try Journal(path: session.state.journalFile).latest(lineage: checkpoint.lineage), [:])
  }

  /// Answers every command of the network step the way AWS would the first time.
  func answerNetwork(_ runner: ScriptedRunner) {
    runner.answerCallerIdentity()
    runner.on("aws", "ec2", "create-vpc", reply: .ok("vpc-0a1"), repeatLast: false)
    // A new VPC has DNS support on and DNS hostnames off (the EC2 defaults).
    runner.on(
      [
        "aws", "ec2", "describe-vpc-attribute", "--vpc-id", "vpc-0a1", "--attribute",
        "enableDnsSupport",
      ], replies: [.ok("True")])
    runner.on(
      [
        "aws", "ec2", "describe-vpc-attribute", "--vpc-id", "vpc-0a1", "--attribute",
        "enableDnsHostnames",
      ], replies: [.ok("False")])
    runner.on("aws", "ec2", "modify-vpc-attribute", reply: .ok(), repeatLast: false)
    runner.on(
      ["aws", "ec2", "create-subnet"],
      replies: ["subnet-01", "subnet-02", "subnet-03", "subnet-04"].map { .ok($0) },
      repeatLast: false)
    runner.on("aws", "ec2", "create-internet-gateway", reply: .ok("igw-0b1"), repeatLast: false)
    runner.on("aws", "ec2", "attach-internet-gateway", reply: .ok(), repeatLast: false)
    runner.on("aws", "ec2", "allocate-address", reply: .ok("eipalloc-0c1"), repeatLast: false)
    runner.on("aws", "ec2", "create-nat-gateway", reply: .ok("nat-0d1"), repeatLast: false)
    runner.on("aws", "ec2", "describe-nat-gateways", reply: .ok("available"))
    runner.on(
      ["aws", "ec2", "create-route-table"], replies: [.ok("rtb-01"), .ok("rtb-02")],
      repeatLast: false)
    runner.on(["aws", "ec2", "create-route"], replies: [.ok(), .ok()], repeatLast: false)
    runner.on(
      ["aws", "ec2", "associate-route-table"],
      replies: ["rtbassoc-01", "rtbassoc-02", "rtbassoc-03", "rtbassoc-04"].map { .ok($0) },
      repeatLast: false)
  }
}
