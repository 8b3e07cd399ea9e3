import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// The operator at a real terminal: the built tool runs on a pseudo-terminal
/// (Tests/Fixtures/pty/drive.py), against the emulator. Keys go through the terminal's line
/// discipline as typed ones do: Ctrl-C ("\u{03}") makes the kernel send SIGINT, Ctrl-D ("\u{04}")
/// is the end of the input, closing the terminal sends SIGHUP.
final class TerminalTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  static let prompt = "[q]uit: "

  /// Enter alone asks again; `y` runs the write; `n` skips it and every action that needs it
  /// (here the public subnet the NAT gateway goes in: its route table association, the NAT
  /// gateway, the wait for it and the private default route); `a` runs the rest of the step without
  /// asking. A later run asks for what was skipped, `q` ends it (130) without running it, and
  /// `run --yes` makes the rest: one of each.
  func testAnswersAtThePrompts() async throws {
    let workspace = try Workspace()
    let first = try await workspace.runOnTerminal(
      ["run", "network"],
      script: [
        .text("network/vpc: create VPC"), .text(Self.prompt), .send("\r"),
        .text("please answer y, n, a or q"), .text(Self.prompt), .send("y\r"),
        .text("created          network/vpc"),
        // The VPC's DNS hostnames (moto's new VPC has DNS support on already: no question).
        .text("network/vpc-enable-dns-hostnames: "), .text(Self.prompt), .send("y\r"),
        .text("network/subnet-public-2a: "), .text(Self.prompt), .send("n\r"),
        .text("network/subnet-public-2c: "), .text(Self.prompt), .send("a\r"),
      ])
    XCTAssertEqual(first.exit, 0, first.summary)
    XCTAssertEqual(
      first.transcript.components(separatedBy: "run it?").count - 1, 5,
      "asked for the VPC twice, its DNS hostnames, then the two subnets; nothing after [a]ll: \(first.summary)"
    )
    XCTAssertTrue(
      first.lines.contains("  skipped          network/subnet-public-2a"), first.summary)
    for action in [
      "associate-public-2a", "nat-gateway", "nat-gateway-available", "private-default-route",
    ] {
      XCTAssertTrue(
        first.lines.contains(
          "  skipped          network/\(action)  an action it needs was skipped"),
        "\(action): \(first.summary)")
    }
    for action in ["subnet-public-2c", "subnet-private-2a", "internet-gateway", "elastic-ip"] {
      XCTAssertTrue(
        first.lines.contains { $0.hasPrefix("  created          network/\(action)") },
        "\(action): \(first.summary)")
    }
    let afterFirst = try await networkInventory(workspace)
    XCTAssertEqual(
      afterFirst["subnet"], ["unisync-private-2a", "unisync-private-2c", "unisync-public-2c"])
    XCTAssertEqual(afterFirst["nat"], [])

    // The skipped actions are still to do: asked first, and q ends the run before it runs them.
    let quit = try await workspace.runOnTerminal(
      ["run", "network"],
      script: [.text("network/subnet-public-2a: "), .text(Self.prompt), .send("q\r")])
    XCTAssertEqual(quit.exit, 130, quit.summary)
    XCTAssertTrue(quit.transcript.contains("interrupted (quit at the prompt)"), quit.summary)
    XCTAssertEqual(quit.transcript.components(separatedBy: "run it?").count - 1, 1, quit.summary)
    let afterQuit = try await networkInventory(workspace)
    XCTAssertEqual(afterQuit["subnet"]?.count, 3)

    let rest = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(rest.status, 0, rest.summary)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
  }

  /// Ctrl-D at a prompt ends the run (130); so does Ctrl-C, at once, and at a prompt that hides
  /// what is typed the terminal gets its echo back. Each time the checkpoint loads (`status`), and
  /// `run --yes` finishes with one of each.
  func testCtrlCAndCtrlDAtAPromptEndTheRun() async throws {
    let workspace = try Workspace()
    let endOfInput = try await workspace.runOnTerminal(
      ["run", "network"],
      script: [
        .text("network/vpc: "), .text(Self.prompt), .send("y\r"),
        .text("network/vpc-enable-dns-hostnames: "), .text(Self.prompt), .send("y\r"),
        .text("network/subnet-public-2a: "), .text(Self.prompt), .send("\u{04}"),
      ])
    XCTAssertEqual(endOfInput.exit, 130, endOfInput.summary)
    XCTAssertTrue(
      endOfInput.transcript.contains("interrupted (quit at the prompt)"), endOfInput.summary)
    try await assertStatus(workspace, done: ["vpc"], notDone: ["subnet-public-2a"])

    let interrupted = try await workspace.runOnTerminal(
      ["run", "network"],
      script: [
        .text("network/subnet-public-2a: "), .text(Self.prompt), .send("y\r"),
        .text("network/subnet-public-2c: "), .text(Self.prompt), .send("\u{03}"),
      ])
    XCTAssertEqual(interrupted.exit, 130, interrupted.summary)
    XCTAssertNil(interrupted.failed, interrupted.summary)
    XCTAssertLessThan(
      interrupted.elapsed - (interrupted.times.last ?? 0), 5, "Ctrl-C must end the run at once")
    XCTAssertTrue(interrupted.transcript.contains("^C"), interrupted.summary)
    XCTAssertTrue(
      interrupted.transcript.contains(
        "interrupted (Ctrl-C); the checkpoint is saved, and 'run' resumes from here"),
      interrupted.summary)
    XCTAssertFalse(interrupted.transcript.contains("please answer"), interrupted.summary)
    XCTAssertEqual(interrupted.termios, .init(echo: true, icanon: true, isig: true))
    try await assertStatus(
      workspace, done: ["vpc", "subnet-public-2a"], notDone: ["subnet-public-2c"])

    // The secrets the operator supplies are asked for without echo: Ctrl-C there gives it back.
    let hidden = try await workspace.runOnTerminal(
      ["run", "secrets"], script: [.text("(input hidden): "), .send("\u{03}")])
    XCTAssertEqual(hidden.exit, 130, hidden.summary)
    XCTAssertTrue(hidden.transcript.contains("interrupted (Ctrl-C)"), hidden.summary)
    XCTAssertEqual(hidden.termios, .init(echo: true, icanon: true, isig: true), hidden.summary)

    let rest = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(rest.status, 0, rest.summary)
    XCTAssertFalse(rest.stderr.contains("took over the lock"), rest.summary)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
  }

  /// Ctrl-C while `create-vpc` runs (AWS made the VPC, the answer is slow to come: the aws wrapper
  /// of Tests/Fixtures/pty/bin), then the terminal closed while `create-nat-gateway` runs. Each
  /// time the command is stopped and the run ends at once with 130, its lock released and the
  /// checkpoint loadable; the write keeps its intent, and the next run finds what it made instead
  /// of making another.
  func testCtrlCOrTheTerminalClosedWhileACommandRuns() async throws {
    let workspace = try Workspace()
    let vpcMark = workspace.directory.appendingPathComponent("create-vpc-running").path
    let interrupted = try await workspace.runOnTerminal(
      ["run", "network", "--yes"], script: [.file(vpcMark), .send("\u{03}")],
      environment: slow("ec2 create-vpc", mark: vpcMark), wrapped: true)
    XCTAssertEqual(interrupted.exit, 130, interrupted.summary)
    XCTAssertLessThan(
      interrupted.elapsed - (interrupted.times.last ?? 0), 15,
      "the running command must be stopped, not waited for")
    XCTAssertTrue(interrupted.transcript.contains("interrupted (Ctrl-C)"), interrupted.summary)
    XCTAssertEqual(try lastJournalEvent(workspace, "network/vpc"), "intent")
    try await assertStatus(workspace, done: [], notDone: ["vpc"])

    let natMark = workspace.directory.appendingPathComponent("create-nat-gateway-running").path
    let closed = try await workspace.runOnTerminal(
      ["run", "network", "--yes"], script: [.file(natMark), .hangup],
      environment: slow("ec2 create-nat-gateway", mark: natMark), wrapped: true)
    XCTAssertEqual(closed.exit, 130, "the terminal closed: \(closed.summary)")
    XCTAssertNil(closed.signal, closed.summary)
    XCTAssertLessThan(closed.elapsed - (closed.times.last ?? 0), 15, closed.summary)
    XCTAssertEqual(try lastJournalEvent(workspace, "network/nat-gateway"), "intent")
    try await assertStatus(
      workspace, done: ["vpc", "subnet-public-2a"], notDone: ["nat-gateway"])

    let rest = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(rest.status, 0, rest.summary)
    XCTAssertFalse(
      rest.stderr.contains("took over the lock"), "the lock was released: \(rest.summary)")
    XCTAssertTrue(rest.stdout.contains("recovered        network/nat-gateway"), rest.summary)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
    XCTAssertEqual(try workspace.checkpoint().actions["network/vpc"]?.outcome, .recovered)
  }

  /// On a terminal a wait is a live line, redrawn every second: the state it read, the time so
  /// far and the state it waits for; the line is gone when the wait ends. In a file: one plain
  /// line per poll, no carriage return, no spinner.
  func testLiveLineOnATerminalAndNoneInAFile() async throws {
    // The NAT gateway's polls at their full 5 s: the seconds between them are what is counted.
    let fullPauses: (inout [String: Any]) -> Void = { config in
      var operations = config["operations"] as? [String: Any] ?? [:]
      operations["pausePercent"] = 100
      config["operations"] = operations
    }
    let workspace = try Workspace(configure: fullPauses)
    let counter = workspace.directory.appendingPathComponent("nat-polls").path
    // One action at a time: nothing else prints while the NAT gateway is waited for.
    let terminal = try await workspace.runOnTerminal(
      ["run", "network", "--yes", "--jobs", "1"], script: [],
      environment: pending("describe-nat-gateways --nat-gateway-ids", counter: counter),
      wrapped: true)
    XCTAssertEqual(terminal.exit, 0, terminal.summary)
    let live = "waiting network/nat-gateway-available: pending ("
    XCTAssertNotNil(
      terminal.transcript.range(
        of: #"\r  [|/\\-] "# + NSRegularExpression.escapedPattern(for: live),
        options: .regularExpression),
      terminal.summary)
    XCTAssertTrue(terminal.transcript.contains("s), until available"), terminal.summary)
    // Redrawn every second, not only when a poll answers (at 0 s, 5 s and 10 s): after the last
    // line printed before the wait, the time waited counts on until the wait ends.
    let beforeRead =
      terminal.transcript.components(separatedBy: "read             network/nat-gateway-available")
      .first ?? ""
    // (By scalars: the terminal ends lines with "\r\n", one Character that is not "\n".)
    let scalars = beforeRead.unicodeScalars
    let lastFrames =
      scalars.lastIndex(of: "\n").map { String(scalars[scalars.index(after: $0)...]) }
      ?? ""
    let seconds = Set(
      lastFrames.components(separatedBy: live).dropFirst().compactMap {
        Int($0.prefix { $0.isNumber })
      })
    XCTAssertGreaterThanOrEqual(
      seconds.count, 4, "the time waited counts between polls: \(seconds.sorted())")
    XCTAssertFalse(
      terminal.lines.contains { $0.contains("waiting") }, "the live line stays: \(terminal.lines)")
    XCTAssertTrue(terminal.lines.contains("  read             network/nat-gateway-available"))

    // The same run with standard output to a file.
    let file = try Workspace(name: "file", configure: fullPauses)
    let fileCounter = file.directory.appendingPathComponent("nat-polls").path
    var variables = pending("describe-nat-gateways --nat-gateway-ids", counter: fileCounter)
    variables["PATH"] = wrappedPath
    let tool = try RunningTool(file, ["run", "network", "--yes"], environment: variables)
    let (status, text) = try await tool.finish()
    XCTAssertEqual(status, 0, text)
    XCTAssertFalse(text.contains("\r"), text.debugDescription)
    XCTAssertFalse(text.contains("\u{1B}"), text.debugDescription)
    let waits = text.split(separator: "\n").filter { $0.contains("waiting network/") }
    XCTAssertEqual(waits.count, 3, "one line per poll: \(waits)")
    XCTAssertNotNil(
      waits.first?.range(
        of:
          #"^  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+ waiting network/nat-gateway-available: pending \(\d+s\), until available$"#,
        options: .regularExpression), "\(waits)")
  }

  /// Steps running beside each other on a terminal (the queues and the images need nothing of
  /// each other): each step keeps its own block, header, results and end, never interleaved with
  /// the other's. The local actions (the registry login, the image builds) say they ran, not
  /// that they read something. `status` then names every action in full.
  func testStepsBesideEachOtherKeepTheirBlocks() async throws {
    let registry = try DockerEnvironment.registry()
    let prefix = "term-" + UUID().uuidString.prefix(8).lowercased()
    let workspace = try Workspace { config in
      config["registry"] = registry
      var ecr = config["ecr"] as? [String: Any] ?? [:]
      ecr["repositoryPrefix"] = prefix
      config["ecr"] = ecr
    }
    workspace.environment["DOCKER_CONFIG"] =
      workspace.directory.appendingPathComponent("docker-config").path
    let run = try await workspace.runOnTerminal(
      ["run", "sqs", "ecr", "--yes"], script: [],
      environment: ["NO_COLOR": "", "TERM": "xterm-256color"])
    XCTAssertEqual(run.exit, 0, run.summary)
    XCTAssertTrue(run.transcript.contains("\u{1B}[32m"), "colour on a terminal")
    let lines = run.lines
    var blocks: [String: Range<Int>] = [:]
    for (step, header) in [("sqs", "8 SQS queues (sqs)"), ("ecr", "5 ECR and Docker images (ecr)")]
    {
      guard let start = lines.firstIndex(of: header),
        let end = lines.firstIndex(where: { $0.hasPrefix("  \(step) finished in ") })
      else { return XCTFail("no block for \(step): \(run.summary)") }
      XCTAssertLessThan(start, end, run.summary)
      blocks[step] = start..<(end + 1)
      for line in lines[(start + 1)..<end] {
        XCTAssertTrue(line.contains(" \(step)/"), "\(step)'s block holds \(line): \(run.summary)")
      }
    }
    XCTAssertFalse(
      blocks["sqs"]!.overlaps(blocks["ecr"]!), "the blocks interleave: \(run.summary)")
    for service in ["api-gateway", "user-service", "course-service", "schedule-service"] {
      XCTAssertTrue(
        lines.contains("  ran locally      ecr/build-\(service)"), "\(service): \(run.summary)")
    }
    XCTAssertTrue(lines.contains("  ran locally      ecr/login"), run.summary)
    XCTAssertFalse(lines.contains { $0.hasPrefix("  read             ecr/build-") }, run.summary)
    XCTAssertTrue(lines.contains { $0.hasPrefix("finished in ") && $0.contains("ran locally") })

    let status = try await workspace.run(["status"])
    XCTAssertEqual(status.status, 0, status.summary)
    for name in [
      "queue-assignment-events-queue-dlq", "queue-arn-assignment-events-queue-dlq",
      "queue-arn-assignment-events-queue", "push-latest-schedule-service",
    ] {
      XCTAssertNotNil(
        status.stdout.range(of: "\n    \(name) +done ", options: .regularExpression),
        "\(name) in full: \(status.stdout)")
    }
  }

  // MARK: - Helpers

  /// PATH with the terminal tests' aws wrapper first (then the loopback shim).
  var wrappedPath: String {
    repositoryRoot.appendingPathComponent("Tests/Fixtures/pty/bin").path + ":"
      + Workspace.shimmedPath
  }

  /// The aws wrapper's variables: the first call matching `match` answers only after `mark` is
  /// made and 60 seconds have passed (the tests stop it long before).
  func slow(_ match: String, mark: String) -> [String: String] {
    ["RUNBOOK_SLOW_MATCH": match, "RUNBOOK_SLOW_MARK": mark, "RUNBOOK_SLOW_SECONDS": "60"]
  }

  /// The aws wrapper's variables: the first two polls matching `match` answer `pending` (the wait
  /// lasts two intervals, 10 s).
  func pending(_ match: String, counter: String) -> [String: String] {
    [
      "RUNBOOK_PENDING_MATCH": match, "RUNBOOK_PENDING_POLLS": "2",
      "RUNBOOK_PENDING_COUNTER": counter,
    ]
  }

  /// The event of the journal's last entry for `action` (`intent`, `result`, `failed`).
  func lastJournalEvent(_ workspace: Workspace, _ action: String) throws -> String? {
    let text = try String(
      contentsOfFile: workspace.stateDirectory + "/journal.jsonl", encoding: .utf8)
    return text.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }.last { $0["action"] as? String == action }?["event"] as? String
  }

  /// `status` works on the checkpoint the interrupted run left, and says that these network
  /// actions are done and those are not.
  func assertStatus(
    _ workspace: Workspace, done: [String], notDone: [String], file: StaticString = #filePath,
    line: UInt = #line
  ) async throws {
    let status = try await workspace.run(["status"])
    XCTAssertEqual(status.status, 0, status.summary, file: file, line: line)
    let network = status.stdout.components(separatedBy: "\n2.2 ").first ?? ""
    let doneNow = Set(
      network.split(separator: "\n").filter { $0.hasPrefix("    ") && $0.contains(" done ") }
        .compactMap { $0.split(separator: " ").first.map(String.init) })
    for action in done {
      XCTAssertTrue(doneNow.contains(action), "\(action): \(status.stdout)", file: file, line: line)
    }
    for action in notDone {
      XCTAssertFalse(
        doneNow.contains(action), "\(action): \(status.stdout)", file: file, line: line)
    }
  }
}

/// What a run on a pseudo-terminal showed and how it ended (Tests/Fixtures/pty/drive.py).
struct TerminalRun: Decodable {
  struct Failure: Decodable {
    var step: Int
    var reason: String
  }
  struct Modes: Decodable, Equatable {
    var echo: Bool
    var icanon: Bool
    var isig: Bool
  }
  /// Everything the tool wrote, escape sequences and carriage returns included.
  var transcript: String
  /// The lines as the terminal shows them at the end.
  var lines: [String]
  var exit: Int32?
  var signal: Int32?
  var killed: Bool
  /// The first step of the script that did not happen (text never shown, the tool ended first).
  var failed: Failure?
  /// Echo, line mode and signals of the terminal once the tool ended (nil after a hangup).
  var termios: Modes?
  /// Seconds from the start to the tool's end, and to each step of the script.
  var elapsed: Double
  var times: [Double]

  var summary: String {
    "exit \(exit.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-")"
      + (killed ? " (killed)" : "") + (failed.map { " script step \($0.step): \($0.reason)" } ?? "")
      + "\n" + lines.joined(separator: "\n")
  }
}

/// One step of what the operator does at the terminal (drive.py's script).
enum TerminalKey {
  /// Wait for this text (after the previous one).
  case text(String)
  /// Type this ("y\r"; "\u{03}" is Ctrl-C, "\u{04}" Ctrl-D).
  case send(String)
  /// Wait until this file exists.
  case file(String)
  /// Close the terminal.
  case hangup

  var json: [String: Any] {
    switch self {
    case .text(let text): ["text": text]
    case .send(let text): ["send": text]
    case .file(let path): ["file": path]
    case .hangup: ["hangup": true]
    }
  }
}

extension Workspace {
  /// Runs `runbook --config … --state-dir … --endpoint-url … ARGS` on a pseudo-terminal, playing
  /// `script`; returns once the tool has ended (killed after `timeout` seconds past the script:
  /// generous, a whole network step on a busy machine can take two minutes).
  /// - Parameter wrapped: put the aws wrapper of Tests/Fixtures/pty/bin first on PATH.
  func runOnTerminal(
    _ arguments: [String], script: [TerminalKey], environment extra: [String: String] = [:],
    wrapped: Bool = false, timeout: Double = 240
  ) async throws -> TerminalRun {
    var variables = [
      "PATH": Self.shimmedPath, "NO_COLOR": "1", "TERM": "xterm", "AWS_ACCESS_KEY_ID": "testing",
      "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null",
      "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
    ]
    if wrapped {
      variables["PATH"] =
        repositoryRoot.appendingPathComponent("Tests/Fixtures/pty/bin").path + ":"
        + Self.shimmedPath
    }
    variables.merge(environment) { $1 }
    variables.merge(extra) { $1 }
    let steps = String(
      decoding: try JSONSerialization.data(withJSONObject: script.map(\.json)), as: UTF8.self)
    let driver = repositoryRoot.appendingPathComponent("Tests/Fixtures/pty/drive.py").path
    // Every variable again through --env: a python3 started by a version manager's shim puts
    // its own folder first on PATH.
    let invocation = Invocation(
      executable: "python3",
      arguments: [driver, "--timeout", String(timeout), "--script", steps]
        + variables.sorted { $0.key < $1.key }.flatMap { ["--env", "\($0.key)=\($0.value)"] }
        + [
          "--", try Self.binary(), "--config", configPath, "--state-dir", stateDirectory,
          "--endpoint-url", endpoint,
        ] + arguments,
      environment: variables, workingDirectory: directory.path)
    let output = try await ProcessRunner().run(invocation)
    guard output.succeeded else {
      throw HarnessError.missing("drive.py failed: \(output.termination) \(output.stderrText)")
    }
    return try JSONDecoder().decode(TerminalRun.self, from: output.standardOutput)
  }
}
