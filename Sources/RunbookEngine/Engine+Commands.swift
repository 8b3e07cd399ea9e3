import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

extension Engine {
  /// The account of the credentials in use (``Preflight/account``).
  func callerAccount() async throws -> String {
    let command = preflight.account
    let output = try await runCommand(
      command, values: [:], step: "preflight", action: "caller-identity", audit: nil)
    let account = output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    guard output.succeeded,
      account.range(of: preflight.accountPattern, options: .regularExpression) != nil
    else {
      throw StepFailure(
        step: "preflight", action: "caller-identity",
        command: resolver.display(command, values: [:]), termination: output.termination,
        errorCode: dialect.errorCode(in: output.stderrText),
        errorCodeLabel: dialect.errorCodeLabel,
        reason: "cannot read \(preflight.accountDescription): "
          + dialect.explain(resolver.secrets.mask(output.stderrText)))
    }
    return account
  }

  /// Runs one command, retrying throttling errors; logs it (masked) to the audit log.
  func runCommand(
    _ command: Command, values: [String: String], step: String, action: String, audit: AuditLog?
  ) async throws -> ProcessOutput {
    let shown = resolver.display(command, values: values)
    reporter.report(.commandStarted(step: step, action: action, command: shown))
    var attempt = 1
    let firstStarted = Date()
    let fresh = Set(command.exportReferences + command.pipedInto.flatMap(\.exportReferences))
      .intersection(freshExports.withLock { $0 })
    while true {
      try checkInterrupted()
      let scratch = ScratchFiles(in: privateFolder.withLock { $0 })
      defer { scratch.removeAll() }
      let started = Date()
      let output: ProcessOutput
      do {
        let invocation = try resolver.invocation(command, values: values, scratch: scratch)
        if let consumer = command.pipedInto.first {
          let consumerInvocation = try resolver.invocation(
            consumer, values: values, scratch: scratch, standardInputFree: false)
          let result = try await runner.runPipeline(invocation, into: consumerInvocation)
          output = ProcessOutput(
            termination: result.producer.succeeded
              ? result.consumer.termination : result.producer.termination,
            standardOutput: result.consumer.standardOutput,
            standardError: result.producer.standardError + result.consumer.standardError)
        } else {
          output = try await runner.run(invocation)
        }
      } catch let error as ProcessLaunchError {
        audit?.write("[\(step)/\(action)] \(shown) -> \(error)")
        throw StepFailure(
          step: step, action: action, command: shown, termination: nil, errorCode: nil,
          reason: error.description)
      }
      let seconds = Date().timeIntervalSince(started)
      let stderr = resolver.secrets.mask(output.stderrText)
      audit?.write(
        "[\(step)/\(action)] \(shown) -> \(output.termination) in \(String(format: "%.2f", seconds))s"
          + (dialect.requestID(in: output.stdoutText + "\n" + stderr).map { " request-id \($0)" }
            ?? "")
          + (output.succeeded
            ? "" : " stderr: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"))
      // A command Ctrl-C stopped failed because of it, killed by the signal or not (the aws CLI
      // catches SIGINT and exits 130): the run ends interrupted, and a write keeps its intent
      // without a "failed" entry, so the next run looks for what it may have made.
      if !output.succeeded { try checkInterrupted() }
      guard !output.succeeded, let code = dialect.errorCode(in: output.stderrText) else {
        return output
      }
      let delay: Double
      let reason: String
      if dialect.isThrottling(code), attempt < options.retry.attempts {
        delay = options.retry.delay(attempt: attempt)
        reason = code
      } else if dialect.isNotVisibleYet(code), !fresh.isEmpty,
        Date().timeIntervalSince(firstStarted) < options.retry.notVisibleYetSeconds
      {
        delay = options.retry.notVisibleYetDelay(attempt: attempt)
        reason =
          "\(code): \(fresh.sorted().joined(separator: ", ")) made or found a moment ago, not visible everywhere yet"
      } else {
        return output
      }
      reporter.report(
        .retrying(step: step, action: action, reason: reason, attempt: attempt, delaySeconds: delay)
      )
      audit?.write(
        "[\(step)/\(action)] retry \(attempt) after \(code), waiting \(String(format: "%.2f", delay))s"
      )
      try await sleepInterruptibly(seconds: delay)
      attempt += 1
    }
  }

  /// Sleeps in short slices so an interrupt is noticed quickly.
  func sleepInterruptibly(seconds: Double) async throws {
    let end = Date().addingTimeInterval(seconds * options.pauseScale)
    while Date() < end {
      try checkInterrupted()
      let slice = min(0.1, end.timeIntervalSinceNow)
      if slice > 0 { try? await Task.sleep(nanoseconds: UInt64(slice * 1_000_000_000)) }
    }
    try checkInterrupted()
  }
}
