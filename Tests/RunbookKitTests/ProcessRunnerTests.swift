import Dispatch
import Foundation
import Synchronization
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Tests of ``ProcessRunner`` and ``SignalWatcher``: one or more per item of the design note
/// "Foundation.Process on Linux: pitfalls and fixes" (numbers in the test names' comments).
///
/// Each test that could hang runs under ``withTimeout(_:_:)``, so a deadlock fails the test
/// instead of stalling the suite. Fixture scripts live in `Tests/Fixtures/process/`.
final class ProcessRunnerTests: XCTestCase {

  // MARK: 1. Pipe-buffer deadlock

  func testOneMebibyteOnStdoutAndStderrInterleavedCompletes() async throws {
    let size = 1 << 20
    let output = try await withTimeout(20) {
      try await ProcessRunner().run(python("interleaved-output.py", "\(size)"))
    }
    XCTAssertEqual(output.termination, .exited(0), output.stderrText)
    let pattern = Data((0..<size).map { UInt8(truncatingIfNeeded: $0) })
    XCTAssertEqual(output.standardOutput.count, size)
    XCTAssertEqual(output.standardError.count, size)
    XCTAssert(output.standardOutput == pattern, "stdout bytes differ")
    XCTAssert(output.standardError == Data(pattern.reversed()), "stderr bytes differ")
  }

  func testOneMebibyteOfStdinEchoedByChildThatWritesFirst() async throws {
    // The child writes 1 MiB before it reads anything: writing stdin on the calling thread, or
    // before draining stdout, deadlocks.
    let size = 1 << 20
    let input = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    var invocation = python("echo-stdin.py", "\(size)")
    invocation.standardInput = input
    let output = try await withTimeout(20) { [invocation] in
      try await ProcessRunner().run(invocation)
    }
    XCTAssertEqual(output.termination, .exited(0), output.stderrText)
    XCTAssertEqual(output.standardOutput.count, 2 * size)
    XCTAssert(output.standardOutput.prefix(size) == Data(repeating: UInt8(ascii: "P"), count: size))
    XCTAssert(output.standardOutput.suffix(size) == input, "echoed stdin differs")
  }

  func testEmptyStdinGivesEOFAndUnreadStdinDoesNotKillUs() async throws {
    let runner = ProcessRunner()
    var empty = python("stdin-info.py")
    empty.standardInput = Data()
    let emptyOutput = try await withTimeout(10) { [empty] in try await runner.run(empty) }
    XCTAssertEqual(try decode(emptyOutput)["bytes"] as? Int, 0)

    // A child that exits without reading 4 MiB of stdin: our write fails with EPIPE, and the
    // SIGPIPE it raises must not terminate the test process.
    let unread = Invocation(
      executable: "sh", arguments: ["-c", "exit 0"], standardInput: Data(count: 4 << 20))
    let unreadOutput = try await withTimeout(10) { try await runner.run(unread) }
    XCTAssertEqual(unreadOutput.termination, .exited(0))
  }

  // MARK: 2. No readabilityHandler: EOF is always seen

  func testEveryShortRunDeliversAllOutputAndEOF() async throws {
    let runner = ProcessRunner()
    try await withTimeout(20) {
      for index in 0..<20 {
        let output = try await runner.run(
          Invocation(
            executable: "sh",
            arguments: ["-c", "head -c 70000 /dev/zero; echo \(index) >&2"]))
        XCTAssertEqual(output.standardOutput.count, 70000, "run \(index)")
        XCTAssertEqual(output.stderrText, "\(index)\n", "run \(index)")
      }
    }
  }

  // MARK: 2, 3 and 11. APIs that misbehave on Linux are not used

  func testRunnerAvoidsAPIsThatMisbehaveOnLinux() throws {
    let commands = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Sources/RunbookProcess")
    for file in [
      "ProcessRunner.swift", "ChildProcesses.swift", "Pipes.swift", "SignalWatcher.swift",
    ] {
      let code = try String(
        contentsOf: commands.appendingPathComponent(file), encoding: .utf8
      )
      .split(separator: "\n")
      .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
      .joined(separator: "\n")
      for forbidden in [
        "readabilityHandler", "waitUntilExit", "NSLock", "NSCondition", ".bytes",
        "SIG_IGN", "signal(SIG",
      ] {
        XCTAssertFalse(code.contains(forbidden), "\(file) uses \(forbidden)")
      }
    }
  }

  // MARK: 3. No waitUntilExit: running children do not occupy cooperative threads

  func testRunningChildrenLeaveCooperativeThreadsFree() async throws {
    // More waiting children than the cooperative pool has threads, each waiting until the test
    // lets it go (or a minute has passed, so a broken runner fails the test instead of hanging
    // it): if each run blocked a thread until its child exited, the probe task below could run
    // only once the children are gone. No clock decides: the children are still there or not.
    let release = try makeScratchFolder().appendingPathComponent("go").path
    let runner = ProcessRunner()
    let count = min(ProcessInfo.processInfo.activeProcessorCount + 4, 36)
    let outputs = Task {
      try await withThrowingTaskGroup(of: ProcessOutput.self) { group in
        for _ in 0..<count {
          group.addTask {
            try await runner.run(
              Invocation(
                executable: "/bin/sh",
                arguments: [
                  "-c",
                  "i=0; while [ ! -e \"$0\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
                  release,
                ]))
          }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
    }
    try await waitUntil(timeout: 60) { runner.liveChildCount == count }
    await Task.detached {}.value
    XCTAssertEqual(runner.liveChildCount, count, "a cooperative task waited for the children")
    XCTAssertTrue(FileManager.default.createFile(atPath: release, contents: nil))
    let results = try await withTimeout(60) { try await outputs.value }
    XCTAssertEqual(results.filter(\.succeeded).count, count)
  }

  // MARK: 3. run() throwing closes our pipe ends and reports launchFailed

  func testLaunchFailureIsReportedAndLeaksNothing() async throws {
    let directory = try makeScratchFolder()
    let script = directory.appendingPathComponent("bad-interpreter")
    try "#!/nonexistent/interpreter\n".write(to: script, atomically: true, encoding: .utf8)
    XCTAssertEqual(chmod(script.path, 0o755), 0)
    let runner = ProcessRunner()
    _ = try await runner.run(Invocation(executable: "true", arguments: []))  // Foundation set-up
    let pipesBefore = openPipes()

    for _ in 0..<3 {
      do {
        _ = try await withTimeout(10) {
          try await runner.run(Invocation(executable: script.path, arguments: []))
        }
        XCTFail("expected a launch failure")
      } catch let error as ProcessLaunchError {
        guard case .launchFailed(let name, let reason) = error else {
          return XCTFail("unexpected \(error)")
        }
        XCTAssertEqual(name, script.path)
        XCTAssertFalse(reason.isEmpty)
      }
    }
    XCTAssertEqual(runner.liveChildCount, 0)
    // Foundation itself leaks its two termination sockets per failed run(); our pipes must not.
    XCTAssertEqual(openPipes(), pipesBefore, "pipe descriptors leaked")

    do {
      _ = try await runner.run(
        Invocation(executable: "true", arguments: [], workingDirectory: "/nonexistent/dir"))
      XCTFail("expected a launch failure")
    } catch let error as ProcessLaunchError {
      XCTAssertEqual(
        error, .launchFailed("true", reason: "working directory '/nonexistent/dir' does not exist"))
    }
  }

  // MARK: 4. Exit can precede EOF

  func testOutputWrittenAfterTheChildExitsIsCollected() async throws {
    let output = try await withTimeout(10) {
      try await ProcessRunner().run(python("late-writer.py"))
    }
    XCTAssertEqual(output.termination, .exited(0), output.stderrText)
    XCTAssertEqual(output.stdoutText, "early\nlate\n")
  }

  // MARK: 5. Process groups, interrupt and kill

  func testChildLeadsItsOwnProcessGroup() async throws {
    let output = try await withTimeout(10) { try await ProcessRunner().run(python("proc-info.py")) }
    let info = try decode(output)
    let pid = try XCTUnwrap(info["pid"] as? Int)
    XCTAssertEqual(info["pgid"] as? Int, pid, "Foundation no longer starts a process group")
    XCTAssertNotEqual(pid_t(pid), getpgrp())
  }

  func testInterruptRunsTheChildsSIGINTTrap() async throws {
    let directory = try makeScratchFolder()
    let marker = directory.appendingPathComponent("marker").path
    let runner = ProcessRunner()
    let output = Task {
      try await runner.run(Invocation(executable: fixture("trap-sigint.sh"), arguments: [marker]))
    }
    try await waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: marker + ".ready") }
    XCTAssertEqual(runner.liveChildCount, 1)
    // A grace long enough for any machine: exit status 130 (not SIGKILL) says the trap ran.
    runner.interruptChildren(grace: .seconds(60))
    let result = try await withTimeout(120) { try await output.value }
    XCTAssertEqual(result.termination, .exited(130), "the child needed SIGKILL")
    XCTAssertEqual(try String(contentsOfFile: marker, encoding: .utf8), "interrupted\n")
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  func testInterruptEscalatesToSIGKILLAfterTheGrace() async throws {
    let directory = try makeScratchFolder()
    let ready = directory.appendingPathComponent("ready").path
    let runner = ProcessRunner()
    let output = Task {
      try await runner.run(Invocation(executable: fixture("ignore-sigint.sh"), arguments: [ready]))
    }
    try await waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: ready) }
    let interrupted = Date()
    runner.interruptChildren(grace: .milliseconds(300))
    let result = try await withTimeout(10) { try await output.value }
    XCTAssertEqual(result.termination, .signaled(SIGKILL))
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(interrupted), 0.25)
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  func testInterruptKillsGrandchildHoldingThePipes() async throws {
    // The shell dies on SIGINT; its background `sleep` ignores SIGINT and keeps stdout open, so
    // only SIGKILL to the whole group (even after the shell is gone) ends the run.
    let directory = try makeScratchFolder()
    let ready = directory.appendingPathComponent("ready").path
    let runner = ProcessRunner(outputGraceAfterExit: .seconds(30))
    let output = Task {
      try await runner.run(Invocation(executable: fixture("grandchild.sh"), arguments: [ready]))
    }
    try await waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: ready) }
    runner.interruptChildren(grace: .milliseconds(300))
    let result = try await withTimeout(10) { try await output.value }
    XCTAssertEqual(result.termination, .signaled(SIGINT))
    let grandchild = try XCTUnwrap(
      pid_t(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)))
    // Its descriptors close (our EOF) a moment before it is shown dead.
    try await waitUntil(timeout: 30) { !isRunning(grandchild) }
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  func testInterruptKillsGroupWhoseLeaderWasAlreadyReaped() async throws {
    // The child dies on SIGINT and is reaped at once; its grandchild ignores SIGINT and holds
    // the pipes. The SIGKILL must still go to the group after the leader is gone.
    let directory = try makeScratchFolder()
    let ready = directory.appendingPathComponent("ready").path
    let runner = ProcessRunner(outputGraceAfterExit: .seconds(30))
    let output = Task { try await runner.run(python("grandchild.py", ready)) }
    try await waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: ready) }
    runner.interruptChildren(grace: .milliseconds(300))
    try await waitUntil(timeout: 30) { runner.liveChildCount == 0 }
    let result = try await withTimeout(10) { try await output.value }
    XCTAssertEqual(result.termination, .signaled(SIGINT))
    let grandchild = try XCTUnwrap(
      pid_t(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)))
    // Its descriptors close (our EOF) a moment before it is shown dead.
    try await waitUntil(timeout: 30) { !isRunning(grandchild) }
  }

  func testDescendantOutsideTheGroupDoesNotHangTheRun() async throws {
    // Like a browser opened by `aws sso login`: a new session, out of reach of group signals,
    // holding our pipes. The run returns once the grace after the child's exit is over.
    let runner = ProcessRunner(outputGraceAfterExit: .milliseconds(300))
    let output = try await withTimeout(60) { try await runner.run(python("escaped-grandchild.py")) }
    let grandchild = pid_t(output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
    // The run came back while the grandchild (sleep 30) still held the pipes: it did not wait.
    let stillRunning = grandchild.map(isRunning) ?? false
    if let grandchild { kill(grandchild, SIGKILL) }
    XCTAssertEqual(output.termination, .exited(0), output.stderrText)
    XCTAssertNotNil(grandchild, "the output read before giving up is kept")
    XCTAssertTrue(stillRunning, "the run waited for the grandchild to end")
  }

  func testInterruptReachesBothChildrenOfAPipeline() async throws {
    let runner = ProcessRunner()
    let output = Task {
      try await runner.runPipeline(
        Invocation(executable: "sleep", arguments: ["30"]),
        into: Invocation(executable: "sleep", arguments: ["30"]))
    }
    try await waitUntil(timeout: 30) { runner.liveChildCount == 2 }
    runner.interruptChildren(grace: .seconds(5))
    let result = try await withTimeout(10) { try await output.value }
    XCTAssertEqual(result.producer.termination, .signaled(SIGINT))
    XCTAssertEqual(result.consumer.termination, .signaled(SIGINT))
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  // MARK: 6. The spawning thread's signal mask does not leak into the child

  func testSignalMaskIsEmptyWhenRunFromATask() async throws {
    let output = try await Task {
      try await withTimeout(10) { try await ProcessRunner().run(signalStatus()) }
    }.value
    XCTAssertEqual(try signalLine("SigBlk", in: output), 0)
  }

  func testSignalMaskIsEmptyWhenRunFromDispatchQueueGlobal() async throws {
    let output: ProcessOutput = try await withTimeout(10) {
      try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
          Task {
            continuation.resume(
              with: await Result { try await ProcessRunner().run(signalStatus()) })
          }
        }
      }
    }
    XCTAssertEqual(try signalLine("SigBlk", in: output), 0)
  }

  func testSignalMaskIsEmptyWhenTheCallingThreadBlocksSignals() async throws {
    // Deterministic version: the runner's code runs on a thread that certainly blocks SIGINT,
    // SIGTERM, SIGUSR1 and SIGUSR2, whatever the Swift runtime does with its own threads.
    let executor = SignalBlockingExecutor()
    defer { executor.shutdown() }
    let (callerBlocked, output) = try await withTimeout(10) {
      try await withTaskExecutorPreference(executor) {
        (currentThreadBlocks(SIGINT), try await ProcessRunner().run(signalStatus()))
      }
    }
    XCTAssertTrue(callerBlocked, "the test executor did not run the caller")
    XCTAssertEqual(try signalLine("SigBlk", in: output), 0)
  }

  // MARK: 7. Signal handling never ignores signals (children would inherit SIG_IGN)

  func testSignalWatcherLeavesChildrenWithDefaultDispositions() async throws {
    let watcher = SignalWatcher(signals: [SIGUSR1, SIGUSR2]) { _ in }
    defer { watcher.cancel() }
    let output = try await withTimeout(10) { try await ProcessRunner().run(signalStatus()) }
    let ignored = try signalLine("SigIgn", in: output)
    XCTAssertEqual(ignored & signalBit(SIGUSR1), 0, "SIGUSR1 ignored in the child")
    XCTAssertEqual(ignored & signalBit(SIGUSR2), 0, "SIGUSR2 ignored in the child")
    // Whatever the child ignores, this test process ignored already (e.g. under `nohup`), apart
    // from glibc's internal signals 32 and 33, which its posix_spawn sets to SIG_IGN in the child.
    let glibcInternal = signalBit(32) | signalBit(33)
    XCTAssertEqual(ignored & ~ownSignalLine("SigIgn") & ~glibcInternal, 0)
    XCTAssertEqual(try signalLine("SigCgt", in: output) & signalBit(SIGUSR1), 0)
  }

  func testSignalWatcherReceivesSignalsRaisedRightAfterInit() async throws {
    let received = Mutex<[Int32]>([])
    let watcher = SignalWatcher(signals: [SIGUSR1, SIGUSR2]) { signal in
      received.withLock { $0.append(signal) }
    }
    // Raised immediately: the sources must already be registered, or the default action of
    // SIGUSR1 would terminate the test process.
    kill(getpid(), SIGUSR1)
    try await waitUntil(timeout: 30) { received.withLock { $0.contains(SIGUSR1) } }
    kill(getpid(), SIGUSR2)
    try await waitUntil(timeout: 30) { received.withLock { $0.contains(SIGUSR2) } }

    watcher.cancel()
    let before = received.withLock { $0.count }
    kill(getpid(), SIGUSR1)
    try await Task.sleep(for: .milliseconds(100))
    XCTAssertEqual(received.withLock { $0.count }, before, "delivered after cancel()")
  }

  // MARK: 8. Interactive children: stdin is /dev/null, never ours

  func testNilStandardInputIsDevNullEvenWhenOursHasData() async throws {
    // Put a pipe with data on our own fd 0 for the duration: a child that inherited our stdin
    // would read it.
    var fds: [Int32] = [-1, -1]
    XCTAssertEqual(pipe(&fds), 0)
    let message = Array("inherited stdin\n".utf8)
    XCTAssertEqual(write(fds[1], message, message.count), message.count)
    close(fds[1])
    let savedStdin = dup(0)
    dup2(fds[0], 0)
    close(fds[0])
    defer {
      dup2(savedStdin, 0)
      close(savedStdin)
    }

    let output = try await withTimeout(60) {
      try await ProcessRunner().run(python("stdin-info.py"))
    }
    let info = try decode(output)
    XCTAssertEqual(info["bytes"] as? Int, 0)
    XCTAssertEqual(info["fd0"] as? String, "/dev/null")
  }

  // MARK: 9 and 12. Environment laid over the inherited one, AWS pager off

  func testEnvironmentIsLaidOverTheInheritedOne() async throws {
    let ours = ProcessInfo.processInfo.environment
    let runner = ProcessRunner(environment: ["AWS_PAGER": "", "RUNBOOK_LAYER": "runner"])
    var invocation = python(
      "env-json.py", "PATH", "HOME", "AWS_PAGER", "RUNBOOK_LAYER", "RUNBOOK_OWN")
    invocation.environment = ["RUNBOOK_OWN": "own"]
    let output = try await withTimeout(10) { [invocation] in try await runner.run(invocation) }
    let env = try decode(output)
    XCTAssertEqual(env["PATH"] as? String, ours["PATH"])
    XCTAssertNotNil(env["PATH"] as? String)
    XCTAssertEqual(env["HOME"] as? String, ours["HOME"])
    XCTAssertEqual(env["AWS_PAGER"] as? String, "")
    XCTAssertEqual(env["RUNBOOK_LAYER"] as? String, "runner")
    XCTAssertEqual(env["RUNBOOK_OWN"] as? String, "own")

    invocation.environment = ["AWS_PAGER": "less", "RUNBOOK_LAYER": "invocation"]
    let overridden = try decode(
      try await withTimeout(10) { [invocation] in try await runner.run(invocation) })
    XCTAssertEqual(overridden["AWS_PAGER"] as? String, "less")
    XCTAssertEqual(overridden["RUNBOOK_LAYER"] as? String, "invocation")
  }

  func testDefaultRunnerTurnsOffTheAWSPager() async throws {
    let output = try await withTimeout(10) {
      try await ProcessRunner().run(python("env-json.py", "AWS_PAGER"))
    }
    XCTAssertEqual(try decode(output)["AWS_PAGER"] as? String, "")
  }

  /// aws CLI v2's auto-prompt is off for every call, whatever the operator's environment says.
  func testDefaultRunnerTurnsOffTheAWSCLIAutoPrompt() async throws {
    let invocation = python("env-json.py", "AWS_CLI_AUTO_PROMPT")
    setenv("AWS_CLI_AUTO_PROMPT", "on", 1)
    defer { unsetenv("AWS_CLI_AUTO_PROMPT") }
    let output = try await withTimeout(10) { [invocation] in
      try await ProcessRunner().run(invocation)
    }
    XCTAssertEqual(try decode(output)["AWS_CLI_AUTO_PROMPT"] as? String, "off")
  }

  // MARK: 10. PATH lookup is ours and errors name the tool

  func testExecutableNotFoundNamesTheTool() async throws {
    do {
      _ = try await ProcessRunner().run(
        Invocation(executable: "runbook-no-such-tool", arguments: ["--version"]))
      XCTFail("expected executableNotFound")
    } catch let error as ProcessLaunchError {
      XCTAssertEqual(error, .executableNotFound("runbook-no-such-tool"))
      XCTAssert(error.description.contains("'runbook-no-such-tool'"))
    }
    do {
      _ = try await ProcessRunner().run(
        Invocation(
          executable: "sh", arguments: ["-c", "true"], environment: ["PATH": "/nonexistent"]))
      XCTFail("expected executableNotFound: the child's PATH is the one searched")
    } catch let error as ProcessLaunchError {
      XCTAssertEqual(error, .executableNotFound("sh"))
    }
  }

  func testFindExecutableSearchesPath() throws {
    let directory = try makeScratchFolder()
    let tool = directory.appendingPathComponent("runbook-tool")
    try "#!/bin/sh\n".write(to: tool, atomically: true, encoding: .utf8)
    XCTAssertEqual(chmod(tool.path, 0o755), 0)
    let plain = directory.appendingPathComponent("plain")
    try "data".write(to: plain, atomically: true, encoding: .utf8)
    try FileManager.default.createDirectory(
      at: directory.appendingPathComponent("dir-tool"), withIntermediateDirectories: false)

    let path = "/nonexistent::\(directory.path)/"
    XCTAssertEqual(findExecutable("runbook-tool", path: path), directory.path + "/runbook-tool")
    XCTAssertNil(findExecutable("plain", path: path), "not executable")
    XCTAssertNil(findExecutable("dir-tool", path: path), "a directory")
    XCTAssertNil(findExecutable("runbook-tool", path: "/nonexistent"))
    XCTAssertNil(findExecutable("runbook-tool", path: ""))
    XCTAssertEqual(findExecutable(tool.path, path: ""), tool.path, "a path is taken as is")
    XCTAssertNil(findExecutable(plain.path))
    XCTAssertNil(findExecutable(""))
    let sh = try XCTUnwrap(findExecutable("sh"), "sh on this process's PATH")
    XCTAssert(sh.hasSuffix("/sh"))
  }

  // MARK: 13. Child output is captured, never written to our own stdout/stderr

  func testChildOutputGoesToPipesNotToOurDescriptors() async throws {
    let output = try await withTimeout(10) {
      try await ProcessRunner().run(
        Invocation(executable: "sh", arguments: ["-c", "echo out; echo err >&2"]))
    }
    XCTAssertEqual(output.stdoutText, "out\n")
    XCTAssertEqual(output.stderrText, "err\n")

    let info = try decode(
      try await withTimeout(10) { try await ProcessRunner().run(python("proc-info.py")) })
    let fds = try XCTUnwrap(info["fds"] as? [String: String])
    for fd in ["1", "2"] {
      let target = try XCTUnwrap(fds[fd])
      XCTAssert(target.hasPrefix("pipe:"), "fd \(fd) is \(target)")
      XCTAssertNotEqual(
        target,
        try? FileManager.default.destinationOfSymbolicLink(
          atPath: "/proc/self/fd/\(fd)"))
    }
  }

  // MARK: Terminations, argv, pipelines, concurrency

  func testExitStatusAndSignalAreReported() async throws {
    let runner = ProcessRunner()
    let exited = try await withTimeout(10) {
      try await runner.run(Invocation(executable: "sh", arguments: ["-c", "exit 3"]))
    }
    XCTAssertEqual(exited.termination, .exited(3))
    XCTAssertFalse(exited.succeeded)
    let signaled = try await withTimeout(10) {
      try await runner.run(Invocation(executable: "sh", arguments: ["-c", "kill -TERM $$"]))
    }
    XCTAssertEqual(signaled.termination, .signaled(SIGTERM))
    let fine = try await withTimeout(10) {
      try await runner.run(Invocation(executable: "true", arguments: []))
    }
    XCTAssertTrue(fine.succeeded)
  }

  func testArgumentsReachTheChildLiterally() async throws {
    let directory = try makeScratchFolder()
    let pwned = directory.appendingPathComponent("pwned").path
    let arguments = [
      "; touch \(pwned)", "$(touch \(pwned))", "`touch \(pwned)`", "a\nb", "| cat", "&& id",
      "'quoted'", "\"double\"", "*", "$HOME", "", " spaced ", "ünïcødé",
    ]
    let output = try await withTimeout(10) {
      try await ProcessRunner().run(python(["argv-json.py"] + arguments))
    }
    let received = try JSONDecoder().decode([String].self, from: output.standardOutput)
    XCTAssertEqual(received, arguments)
    XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "a shell ran")
  }

  func testPipelinePassesOneMebibyteAndNeverCollectsProducerOutput() async throws {
    let size = 1 << 20
    let runner = ProcessRunner()
    let result = try await withTimeout(20) {
      try await runner.runPipeline(
        python("interleaved-output.py", "\(size)"), into: python("echo-stdin.py"))
    }
    XCTAssertTrue(result.succeeded, result.consumer.stderrText)
    XCTAssertEqual(result.producer.standardOutput, Data(), "producer stdout collected")
    XCTAssertEqual(result.producer.standardError.count, size, "producer stderr")
    XCTAssertEqual(result.consumer.standardOutput.count, size)
    XCTAssert(
      result.consumer.standardOutput == Data((0..<size).map { UInt8(truncatingIfNeeded: $0) }))
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  func testPipelineWithStdinAndAnEarlyExitingConsumer() async throws {
    let runner = ProcessRunner()
    var producer = Invocation(executable: "cat", arguments: [])
    producer.standardInput = Data("secret-token".utf8)
    let login = try await withTimeout(10) { [producer] in
      try await runner.runPipeline(producer, into: python("stdin-info.py"))
    }
    XCTAssertTrue(login.succeeded)
    let info = try decode(login.consumer)
    XCTAssertEqual(info["bytes"] as? Int, 12)
    XCTAssert((info["fd0"] as? String)?.hasPrefix("pipe:") == true)

    // `yes` never stops writing; `head` exits after 5 bytes and `yes` dies of SIGPIPE (which it
    // must not ignore).
    let early = try await withTimeout(10) {
      try await runner.runPipeline(
        Invocation(executable: "yes", arguments: []),
        into: Invocation(executable: "head", arguments: ["-c", "5"]))
    }
    XCTAssertEqual(early.consumer.stdoutText, "y\ny\ny")
    XCTAssertEqual(early.producer.termination, .signaled(SIGPIPE))
  }

  func testPipelineWithMissingConsumerStopsTheProducer() async throws {
    let runner = ProcessRunner()
    do {
      _ = try await withTimeout(10) {
        try await runner.runPipeline(
          Invocation(executable: "sleep", arguments: ["30"]),
          into: Invocation(executable: "runbook-no-such-consumer", arguments: []))
      }
      XCTFail("expected executableNotFound")
    } catch let error as ProcessLaunchError {
      XCTAssertEqual(error, .executableNotFound("runbook-no-such-consumer"))
    }
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  func testFiftyConcurrentRunsAllSucceed() async throws {
    let runner = ProcessRunner()
    let outputs = try await withTimeout(30) {
      try await withThrowingTaskGroup(of: (Int, ProcessOutput).self) { group in
        for index in 0..<50 {
          group.addTask {
            let output = try await runner.run(
              Invocation(
                executable: "sh",
                arguments: ["-c", "echo $RUNBOOK_INDEX; head -c 20000 /dev/zero >&2"],
                environment: ["RUNBOOK_INDEX": "\(index)"]))
            return (index, output)
          }
        }
        return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
      }
    }
    XCTAssertEqual(outputs.count, 50)
    for (index, output) in outputs {
      XCTAssertEqual(output.termination, .exited(0))
      XCTAssertEqual(output.stdoutText, "\(index)\n")
      XCTAssertEqual(output.standardError.count, 20000)
    }
    XCTAssertEqual(runner.liveChildCount, 0)
  }

  func testConcurrentChildrenInheritNothingFromEachOther() async throws {
    // A child holding another run's pipe, or Foundation's termination socket of another run,
    // delays that run's EOF or exit until it exits itself. Launches are serialised to prevent
    // this (without that, about 1 child in 20 here inherited a sibling's socket).
    let runner = ProcessRunner()
    let listings = try await withTimeout(60) {
      try await withThrowingTaskGroup(of: ProcessOutput.self) { group in
        for _ in 0..<120 {
          group.addTask {
            try await runner.run(
              Invocation(
                executable: "sh", arguments: ["-c", "ls -l /proc/$$/fd"],
                standardInput: Data("x".utf8)))
          }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
    }
    for listing in listings {
      // "lr-x------ 1 user group 64 Nov 27 07:22 17 -> socket:[8365]"
      let inherited = listing.stdoutText.split(separator: "\n").compactMap { line -> String? in
        let parts = line.components(separatedBy: " -> ")
        guard parts.count == 2, let fd = parts[0].split(separator: " ").last,
          !["0", "1", "2"].contains(fd)
        else { return nil }
        return parts[1]
      }
      XCTAssertEqual(inherited.filter { $0.hasPrefix("pipe:") }, [], "another run's pipe")
      XCTAssertLessThanOrEqual(
        inherited.filter { $0.hasPrefix("socket:") }.count, 1,
        "another run's termination socket: \(inherited)")
    }
  }
}

// MARK: - Helpers

private let fixtureDirectory = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Fixtures/process")

private func fixture(_ name: String) -> String {
  fixtureDirectory.appendingPathComponent(name).path
}

/// The system interpreter when there is one (a version-manager shim costs ~150 ms per start).
private let pythonPath: String =
  findExecutable("python3", path: "/usr/bin:/bin") ?? findExecutable("python3") ?? "python3"

private func python(_ script: String, _ arguments: String...) -> Invocation {
  python([script] + arguments)
}

private func python(_ scriptAndArguments: [String]) -> Invocation {
  Invocation(
    executable: pythonPath,
    arguments: [fixture(scriptAndArguments[0])] + scriptAndArguments.dropFirst())
}

private func signalStatus() -> Invocation {
  Invocation(executable: fixture("signal-status.sh"), arguments: [])
}

/// The hexadecimal mask of a `Sig…:` line printed by `signal-status.sh`.
private func signalLine(_ key: String, in output: ProcessOutput) throws -> UInt64 {
  let line = try XCTUnwrap(
    output.stdoutText.split(separator: "\n").first { $0.hasPrefix(key + ":") },
    "no \(key) in \(output.stdoutText)")
  return try XCTUnwrap(
    UInt64(line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces), radix: 16))
}

private func ownSignalLine(_ key: String) -> UInt64 {
  let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
  let line = status.split(separator: "\n").first { $0.hasPrefix(key + ":") } ?? ""
  return UInt64(line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
}

private func signalBit(_ signal: Int32) -> UInt64 { 1 << UInt64(signal - 1) }

private func currentThreadBlocks(_ signal: Int32) -> Bool {
  var mask = sigset_t()
  pthread_sigmask(SIG_SETMASK, nil, &mask)
  return sigismember(&mask, signal) == 1
}

private func decode(_ output: ProcessOutput) throws -> [String: Any] {
  let object = try JSONSerialization.jsonObject(with: output.standardOutput)
  return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(output.stdoutText)")
}

/// The pipes this process has open (`pipe:[inode]` targets of `/proc/self/fd`).
private func openPipes() -> Set<String> {
  let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
  return Set(
    fds.compactMap {
      try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")
    }
    .filter { $0.hasPrefix("pipe:") })
}

/// Whether `pid` exists and is not a zombie (an orphan may wait a while for its reaper).
private func isRunning(_ pid: pid_t) -> Bool {
  guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
    let close = stat.lastIndex(of: ")")
  else { return false }
  let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
  return state != "Z" && state != "X"
}

private struct TimedOut: Error, CustomStringConvertible {
  var seconds: Double
  var description: String { "timed out after \(seconds) s (deadlock?)" }
}

/// Runs `body`, failing with ``TimedOut`` if it has not finished after `seconds`. The body is
/// left running (it may be deadlocked and deaf to cancellation), so the test fails instead of
/// hanging.
private func withTimeout<T: Sendable>(
  _ seconds: Double, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  let slot = ContinuationSlot<T>()
  return try await withCheckedThrowingContinuation { continuation in
    slot.fill(continuation)
    let task = Task {
      let result = await Result { try await body() }
      slot.take()?.resume(with: result)
    }
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
      if let continuation = slot.take() {
        task.cancel()
        continuation.resume(throwing: TimedOut(seconds: seconds))
      }
    }
  }
}

/// Holds a continuation until whichever of the body and the timer comes first takes it.
private final class ContinuationSlot<T: Sendable>: Sendable {
  private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
  func fill(_ value: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = value } }
  func take() -> CheckedContinuation<T, any Error>? { continuation.withLock { $0.take() } }
}

/// Polls `condition` every 10 ms; throws ``TimedOut`` after `seconds` (a bound for a machine
/// under load: only a failing test waits that long).
private func waitUntil(timeout seconds: Double, _ condition: () -> Bool) async throws {
  let deadline = Date().addingTimeInterval(seconds)
  while !condition() {
    guard Date() < deadline else { throw TimedOut(seconds: seconds) }
    try await Task.sleep(for: .milliseconds(10))
  }
}

extension Result where Failure == any Error {
  fileprivate init(catching body: () async throws -> Success) async {
    do {
      self = .success(try await body())
    } catch {
      self = .failure(error)
    }
  }
}

/// A task executor whose single thread blocks SIGINT, SIGTERM, SIGUSR1 and SIGUSR2, like the
/// worker threads of Dispatch and Swift concurrency do.
private final class SignalBlockingExecutor: TaskExecutor, Sendable {
  private let jobs = Mutex<(queue: [UnownedJob], stopped: Bool)>(([], false))
  private let available = DispatchSemaphore(value: 0)

  init() {
    let thread = Thread { [self] in
      var mask = sigset_t()
      sigemptyset(&mask)
      for signal in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] { sigaddset(&mask, signal) }
      pthread_sigmask(SIG_BLOCK, &mask, nil)
      while true {
        available.wait()
        let next = jobs.withLock { state -> UnownedJob?? in
          if state.stopped { return .none }
          return state.queue.isEmpty ? .some(nil) : state.queue.removeFirst()
        }
        guard let job = next else { return }
        job?.runSynchronously(on: asUnownedTaskExecutor())
      }
    }
    thread.start()
  }

  func enqueue(_ job: UnownedJob) {
    jobs.withLock { $0.queue.append(job) }
    available.signal()
  }

  func shutdown() {
    jobs.withLock { $0.stopped = true }
    available.signal()
  }
}
