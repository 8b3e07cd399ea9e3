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
      if case .signaled = output.termination { try checkInterrupted() }
      guard !output.succeeded, let code = dialect.errorCode(in: output.stderrText),
        dialect.isThrottling(code), attempt < options.retry.attempts
      else { return output }
      let delay = options.retry.delay(attempt: attempt)
      reporter.report(
        .retrying(step: step, action: action, reason: code, attempt: attempt, delaySeconds: delay))
      audit?.write(
        "[\(step)/\(action)] retry \(attempt) after \(code), waiting \(String(format: "%.2f", delay))s"
      )
      try await sleepInterruptibly(seconds: delay)
      attempt += 1
    }
  }

  /// Sleeps in short slices so an interrupt is noticed quickly.
  func sleepInterruptibly(seconds: Double) async throws {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
      try checkInterrupted()
      let slice = min(0.1, end.timeIntervalSinceNow)
      if slice > 0 { try? await Task.sleep(nanoseconds: UInt64(slice * 1_000_000_000)) }
    }
    try checkInterrupted()
  }
}
