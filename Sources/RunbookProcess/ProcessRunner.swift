import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The real ``CommandRunner``: starts `aws`, `docker` and friends with Foundation's `Process`.
///
/// Every item of the design note "Foundation.Process on Linux: pitfalls and fixes" is handled here:
/// - output is drained by one blocking reader thread per pipe, never `readabilityHandler` (1, 2);
/// - exit is observed through `terminationHandler` and a continuation, never `waitUntilExit` (3),
///   and both pipes are read to EOF after it (4);
/// - each child leads its own process group, which ``interruptChildren(grace:)`` signals as a
///   whole (5);
/// - `Process.run()` is called on a short-lived thread whose signal mask is empty (6);
/// - standard input is `/dev/null` or a pipe, never the terminal (8);
/// - the environment is laid over the inherited one (9, 12) and the executable is found on PATH by
///   us (10).
///
/// Launches are serialised and our pipes are close-on-exec, so a child never inherits another
/// run's descriptors. Foundation's termination socket is not close-on-exec, and Foundation closes
/// inherited descriptors from a snapshot of `/proc/self/fd`: without serialisation about one child
/// in twenty of 120 concurrent runs held a sibling's socket, which delays that sibling's exit
/// notification until the unrelated child exits.
///
/// Cancelling the task that awaits a run does not stop the child: use
/// ``interruptChildren(grace:)``.
public final class ProcessRunner: CommandRunner {
  private let environment: [String: String]
  private let outputGraceAfterExit: Duration
  private let registry = ChildRegistry()

  /// Creates a runner.
  ///
  /// - Parameters:
  ///   - environment: Laid over the inherited environment for every child; each invocation's own
  ///     `environment` is laid over this in turn. The default turns off the AWS CLI pager and
  ///     aws CLI v2's auto-prompt (`cli_auto_prompt = on` in an operator's config would make
  ///     every call ask on a terminal, and fail without one: exit 255).
  ///   - outputGraceAfterExit: How long to keep reading a child's output once the child itself has
  ///     exited. A descendant that escaped the child's process group (a browser opened by
  ///     `aws sso login`, say) can hold the pipes open indefinitely; after this grace period the
  ///     runner returns what it has read instead of waiting for it.
  public init(
    environment: [String: String] = ["AWS_PAGER": "", "AWS_CLI_AUTO_PROMPT": "off"],
    outputGraceAfterExit: Duration = .seconds(2)
  ) {
    self.environment = environment
    self.outputGraceAfterExit = outputGraceAfterExit
  }

  /// Number of children started by this runner whose termination has not been observed yet.
  ///
  /// Foundation reports an exit only once every process holding the child's termination socket
  /// has exited, so a shell whose background job still runs is counted as live.
  public var liveChildCount: Int { registry.liveCount }

  /// Runs one process to completion, draining its output.
  ///
  /// - Throws: ``ProcessLaunchError`` when the process cannot be started. A process that starts
  ///   and then fails is not an error: its ``Termination`` says how it ended.
  public func run(_ invocation: Invocation) async throws -> ProcessOutput {
    let stdin: InputSource = invocation.standardInput.map { .data($0) } ?? .nullDevice
    let child = try await launch(invocation, input: stdin, output: .collect)
    return await child.finish()
  }

  /// Runs `producer | consumer` with a pipe between them and no shell.
  ///
  /// The producer's standard input is its invocation's `standardInput` (or `/dev/null`); the
  /// consumer's standard input is the pipe, so the consumer invocation's `standardInput` is
  /// ignored. The producer's standard output is never collected.
  public func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws
    -> PipelineOutput
  {
    let link = try makePipe(name: producer.executable)
    let producerInput: InputSource = producer.standardInput.map { .data($0) } ?? .nullDevice
    let producerChild: RunningChild
    do {
      producerChild = try await launch(
        producer, input: producerInput, output: .descriptor(link.write))
    } catch {
      closeDescriptor(link.read)
      closeDescriptor(link.write)
      throw error
    }
    // Our copy of the write end must go, or the consumer never sees EOF.
    closeDescriptor(link.write)

    let consumerChild: RunningChild
    do {
      consumerChild = try await launch(consumer, input: .descriptor(link.read), output: .collect)
    } catch {
      closeDescriptor(link.read)
      // Nothing can read what the producer writes: stop it rather than leave it running.
      for child in registry.stillRegistered([producerChild.id]) {
        signalGroup(child.pid, SIGKILL, exited: child.exited)
      }
      _ = await producerChild.finish()
      throw error
    }
    closeDescriptor(link.read)

    async let producerOutput = producerChild.finish()
    async let consumerOutput = consumerChild.finish()
    return PipelineOutput(producer: await producerOutput, consumer: await consumerOutput)
  }

  /// Sends SIGINT to the process group of every live child, then SIGKILL to every group whose
  /// child's output is still open after `grace`.
  ///
  /// A child that is being launched while this is called gets its SIGINT as soon as its pid is
  /// known. The SIGKILL also reaches descendants that kept the group alive (and the pipes open)
  /// after the child itself exited.
  public func interruptChildren(grace: Duration = .seconds(3)) {
    let targets = registry.interruptAll()
    for child in targets.children {
      signalGroup(child.pid, SIGINT, exited: child.exited)
    }
    let registry = self.registry
    DispatchQueue.global().asyncAfter(deadline: .now() + grace.timeInterval) {
      for child in registry.stillRegistered(targets.ids) {
        signalGroup(child.pid, SIGKILL, exited: child.exited)
      }
    }
  }

  // MARK: - Launching

  private enum InputSource {
    case nullDevice
    case data(Data)
    /// A descriptor owned by the caller (the pipeline's read end).
    case descriptor(Int32)
  }

  private enum OutputSink {
    case collect
    /// A descriptor owned by the caller (the pipeline's write end).
    case descriptor(Int32)
  }

  private func launch(_ invocation: Invocation, input: InputSource, output: OutputSink)
    async throws -> RunningChild
  {
    let name = invocation.executable
    var environment = ProcessInfo.processInfo.environment
    environment.merge(self.environment) { _, new in new }
    environment.merge(invocation.environment) { _, new in new }

    guard let executablePath = findExecutable(name, path: environment["PATH"] ?? "") else {
      throw ProcessLaunchError.executableNotFound(name)
    }
    if let directory = invocation.workingDirectory {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory),
        isDirectory.boolValue
      else {
        throw ProcessLaunchError.launchFailed(
          name, reason: "working directory '\(directory)' does not exist")
      }
    }

    // Descriptors we create: the child's ends are closed once the child has them, ours are
    // handed to the drain and feed threads, which close them.
    var childEnds: [Int32] = []
    var ourEnds: [Int32] = []
    func closeAll() {
      (childEnds + ourEnds).forEach(closeDescriptor)
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executablePath)
    process.arguments = invocation.arguments
    process.environment = environment
    if let directory = invocation.workingDirectory {
      process.currentDirectoryURL = URL(fileURLWithPath: directory, isDirectory: true)
    }

    let stdoutRead: Int32?
    let stderrRead: Int32
    let stdinWrite: Int32?
    let wake: WakeSignal
    do {
      switch input {
      case .nullDevice:
        process.standardInput = FileHandle.nullDevice
        stdinWrite = nil
      case .data:
        let pipe = try makePipe(name: name)
        childEnds.append(pipe.read)
        ourEnds.append(pipe.write)
        process.standardInput = FileHandle(fileDescriptor: pipe.read, closeOnDealloc: false)
        stdinWrite = pipe.write
      case .descriptor(let fd):
        process.standardInput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        stdinWrite = nil
      }
      switch output {
      case .collect:
        let pipe = try makePipe(name: name)
        childEnds.append(pipe.write)
        ourEnds.append(pipe.read)
        process.standardOutput = FileHandle(fileDescriptor: pipe.write, closeOnDealloc: false)
        stdoutRead = pipe.read
      case .descriptor(let fd):
        process.standardOutput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        stdoutRead = nil
      }
      let errPipe = try makePipe(name: name)
      childEnds.append(errPipe.write)
      ourEnds.append(errPipe.read)
      process.standardError = FileHandle(fileDescriptor: errPipe.write, closeOnDealloc: false)
      stderrRead = errPipe.read
      wake = try WakeSignal(name: name)
    } catch {
      closeAll()
      throw error
    }

    let id = registry.beginLaunch()
    let termination = OneShot<Termination>()
    let registry = self.registry
    let grace = outputGraceAfterExit
    // Set before run(): the handler fires on a Foundation thread once the child is reaped.
    process.terminationHandler = { process in
      let status = process.terminationStatus
      termination.fulfill(
        process.terminationReason == .uncaughtSignal ? .signaled(status) : .exited(status))
      registry.markExited(id)
      DispatchQueue.global().asyncAfter(deadline: .now() + grace.timeInterval) {
        wake.signal()
      }
    }

    let pid: pid_t
    do {
      pid = try await startOnCleanThread(process, id: id)
    } catch {
      closeAll()
      process.terminationHandler = nil
      registry.remove(id)
      throw ProcessLaunchError.launchFailed(name, reason: launchFailureReason(error))
    }
    childEnds.forEach(closeDescriptor)

    let stdoutData: OneShot<Data>?
    if let stdoutRead {
      let result = OneShot<Data>()
      startThread("runbook.stdout") { drain(stdoutRead, wake: wake, into: result) }
      stdoutData = result
    } else {
      stdoutData = nil
    }
    let stderrData = OneShot<Data>()
    startThread("runbook.stderr") { drain(stderrRead, wake: wake, into: stderrData) }
    if let stdinWrite, case .data(let bytes) = input {
      startThread("runbook.stdin") { feed(bytes, to: stdinWrite, wake: wake) }
    }

    return RunningChild(
      id: id, pid: pid, process: process, registry: registry, termination: termination,
      standardOutput: stdoutData, standardError: stderrData)
  }

  /// Calls `process.run()` on a fresh thread with an empty signal mask, so the child does not
  /// inherit the mask of a Dispatch or Swift-concurrency worker (which blocks SIGINT and SIGTERM).
  private func startOnCleanThread(_ process: Process, id: UInt64) async throws -> pid_t {
    let registry = self.registry
    return try await withCheckedThrowingContinuation { continuation in
      startThread("runbook.spawn") {
        var empty = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, nil)
        let result: Result<pid_t, any Error> = launchLock.withLock { _ in
          do {
            try process.run()
          } catch {
            return .failure(error)
          }
          let pid = process.processIdentifier
          if registry.launched(id, pid: pid) {
            // interruptChildren() ran while this child was being started.
            signalGroup(pid, SIGINT, exited: false)
          }
          return .success(pid)
        }
        continuation.resume(with: result)
      }
    }
  }

  private func launchFailureReason(_ error: any Error) -> String {
    if let error = error as? ProcessLaunchError { return error.description }
    return error.localizedDescription
  }
}

// MARK: - PATH lookup

/// Finds an executable the way a shell would, without a shell.
///
/// - Parameters:
///   - name: A bare name (`aws`), searched on `path`, or a path containing `/`, returned as is if it
///     is an executable regular file.
///   - path: A colon-separated list of directories; defaults to this process's `PATH`. Empty
///     entries (which a shell would take as the working directory) are skipped.
/// - Returns: The path of the executable, or `nil` when there is none.
public func findExecutable(_ name: String, path: String? = nil) -> String? {
  guard !name.isEmpty else { return nil }
  if name.contains("/") {
    return isExecutableFile(name) ? name : nil
  }
  let searchPath = path ?? ProcessInfo.processInfo.environment["PATH"] ?? ""
  for directory in searchPath.split(separator: ":", omittingEmptySubsequences: true) {
    let candidate = directory.hasSuffix("/") ? "\(directory)\(name)" : "\(directory)/\(name)"
    if isExecutableFile(candidate) { return candidate }
  }
  return nil
}

private func isExecutableFile(_ path: String) -> Bool {
  var info = stat()
  guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
  return access(path, X_OK) == 0
}

// MARK: - A started child
