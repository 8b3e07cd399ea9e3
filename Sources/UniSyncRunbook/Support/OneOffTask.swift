import Foundation
import RunbookEngine
import RunbookProcess

/// A one-off Fargate task run to its end and judged by its container's exit code: the databases
/// of guide 3.3 (``DatabaseSetup``), a migration before a rollout, `runbook task run`. One piece
/// of code for all three, like ecspresso's `run` or Copilot's `task run`.
///
/// `run-task` is a write that cannot be looked up by tags afterwards, and a second database task
/// must not run unless the first is known to have failed. So each attempt has a `startedBy` of
/// its own, derived from the checkpoint's lineage, what is run (``Memory/key``) and the attempt's
/// number (not also a client token: older aws CLIs refuse `--client-token`). The task's ARN is
/// recorded in the checkpoint (an export, `memory`) the moment `run-task` returns it. A resumed run describes that task instead
/// of running a new one; when a kill came between the call and the record, `list-tasks
/// --started-by` finds the task (stopped tasks stay listed for at least an hour: ListTasks).
/// Only a task known to have failed makes the next attempt, with the next number.
struct OneOffTask: Sendable {
  /// The task definition (an ARN, or a reference to the export holding it).
  var taskDefinition: Argument
  /// The container whose exit code decides, and whose command ``command`` replaces.
  var container: String
  /// The container's command for this run; nil: the task definition's own.
  var command: [String]?
  var subnets: [Argument]
  var securityGroup: Argument
  /// Where the task's awslogs driver writes (stream `ecs/<container>/<task id>`).
  var logGroup: String
  /// A short word for `startedBy` (`db-setup`, `migrate`).
  var purpose: String
  var timeoutSeconds: Int
  var pollSeconds: Int
  /// How many of the task's last log lines a failure shows.
  var logLines: Int
  /// Whether the log lines are shown when the task succeeded too (`runbook task run`).
  var showsLogs = false

  // MARK: Commands

  func runTask(startedBy: Argument) -> Command {
    var arguments: [Argument] = [
      "ecs", "run-task", "--cluster", .ref("CLUSTER_ARN"), "--task-definition", taskDefinition,
      "--launch-type", "FARGATE", "--count", "1",
      "--network-configuration",
      #"{"awsvpcConfiguration":{"subnets":"# + jsonArray(subnets) + #","securityGroups":"#
        + jsonArray([securityGroup]) + #","assignPublicIp":"DISABLED"}}"#,
      // No `--client-token`: younger than the aws CLI some operators run (Debian 12's
      // aws-cli/2.9.19 refuses it); a resumed run finds its task by `--started-by` instead.
      "--started-by", startedBy,
    ]
    if let command {
      // Only the command: secrets stay in the task definition, as references.
      arguments += [
        "--overrides",
        .text(
          #"{"containerOverrides":[{"name":"# + jsonString(container) + #","command":"#
            + jsonArray(command) + "}]}"),
      ]
    }
    arguments += ["--query", "tasks[0].taskArn", "--output", "text"]
    return .aws(arguments)
  }

  static func describeTask(_ task: Argument) -> Command {
    .aws(
      "ecs", "describe-tasks", "--cluster", .ref("CLUSTER_ARN"), "--tasks", task, "--output",
      "json")
  }

  /// The tasks started with `startedBy`: running ones, or (`stopped`) those ECS stopped.
  static func listTasks(startedBy: String, stopped: Bool) -> Command {
    .aws(
      ["ecs", "list-tasks", "--cluster", .ref("CLUSTER_ARN"), "--started-by", .text(startedBy)]
        + (stopped ? ["--desired-status", "STOPPED"] : [])
        + ["--query", "taskArns", "--output", "text"])
  }

  func logEvents(taskID: String) -> Command {
    .aws(
      "logs", "get-log-events", "--log-group-name", .text(logGroup), "--log-stream-name",
      .text("ecs/\(container)/\(taskID)"), "--limit", "\(max(1, logLines))",
      "--query", "events[].message", "--output", "json")
  }

  /// What `plan` shows.
  var outline: [Procedure.Line] {
    let task = Argument.ref("TASK_ARN")
    return [
      .note(
        "unless the task of an earlier, interrupted run is found (the recorded ARN, or list-tasks --started-by):"
      ),
      .command(runTask(startedBy: .ref("STARTED_BY"))),
      .note(
        "then every \(pollSeconds) s until it is STOPPED (at most \(timeoutSeconds) s): the exit code of \(container) decides"
      ),
      .command(Self.describeTask(task)),
      .note("on a failure, its stopped reason and last \(logLines) log lines:"),
      .command(logEvents(taskID: "<TASK_ID>")),
    ]
  }

  // MARK: Running

  /// How the task ended.
  struct Ending: Sendable {
    var taskArn: String
    var exitCode: Int?
    var stoppedReason: String? = nil
    var containerReason: String? = nil
    var succeeded: Bool { exitCode == 0 }

    /// `exit 1 (Essential container in task exited)`.
    var summary: String {
      var text = exitCode.map { "exit \($0)" } ?? "no exit code"
      let reasons = [stoppedReason, containerReason].compactMap { $0 }.filter { !$0.isEmpty }
      if !reasons.isEmpty { text += " (" + reasons.joined(separator: "; ") + ")" }
      return text
    }
  }

  /// Where a resumable run keeps its task in the checkpoint: an export holding
  /// `<key hash> <attempt> <task ARN>`.
  struct Memory: Sendable {
    var export: String
    /// What is run (the task definition and command): a different key starts at attempt 1.
    var key: String
    /// Whether a success is recorded too (`<hash> <attempt> <ARN> ok`): a later run of the same
    /// key then runs nothing (a migration runs once per revision), even when ECS no longer knows
    /// the task.
    var remembersSuccess = false
  }

  /// Runs the task (or finds the one an interrupted run started), waits for it to stop and
  /// returns how it ended. Fails only when the task cannot be run or followed; a task that ran
  /// and failed is an ``Ending`` that did not succeed, its log lines already shown.
  func run(_ context: ProcedureContext, memory: Memory?) async throws -> Ending {
    let lineage = context.values[ContextValue.lineage, default: ""]
    let hash =
      memory.map { Self.hash(lineage + "\n" + $0.key) }
      ?? String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(12))
    var attempt = 1
    if let memory, let recorded = context.values[memory.export] {
      let words = recorded.split(separator: " ").map(String.init)
      if words.count == 4, words[0] == hash, words[3] == "ok" {
        context.progress("task \(Self.short(words[2])) ran this already and exited 0")
        return Ending(taskArn: words[2], exitCode: 0)
      }
      if words.count == 3, words[0] == hash, let number = Int(words[1]) {
        context.progress("an earlier run started task \(Self.short(words[2])): following it")
        let ending = try await follow(context, taskArn: words[2], earlier: true)
        if ending.succeeded { return ending }
        context.progress("task \(Self.short(words[2])) failed: \(ending.summary); running it again")
        attempt = number + 1
      }
    }
    let startedBy = "rb-\(purpose.prefix(10))-\(hash)-\(attempt)"
    var taskArn = try await find(context, startedBy: startedBy)
    if let taskArn {
      context.progress("found task \(Self.short(taskArn)) an interrupted run started")
    } else {
      let command = runTask(startedBy: .text(startedBy))
      let arn = try await context.output(command).trimmingCharacters(in: .whitespacesAndNewlines)
      guard arn.contains(":task/") else {
        throw ProcedureFailure(
          "run-task started no task (it answered '\(arn.prefix(200))')",
          command: context.shown(command))
      }
      taskArn = arn
      context.progress("started task \(Self.short(arn))")
    }
    if let memory, let taskArn {
      try await context.record(export: memory.export, value: "\(hash) \(attempt) \(taskArn)")
    }
    let ending = try await follow(context, taskArn: taskArn ?? "")
    if let memory, memory.remembersSuccess, ending.succeeded {
      try await context.record(
        export: memory.export, value: "\(hash) \(attempt) \(ending.taskArn) ok")
    }
    return ending
  }

  /// A task started with `startedBy` (running, else stopped), if there is one.
  private func find(_ context: ProcedureContext, startedBy: String) async throws -> String? {
    for stopped in [false, true] {
      let words = try await context.output(Self.listTasks(startedBy: startedBy, stopped: stopped))
        .split(whereSeparator: \.isWhitespace).map(String.init).filter { $0.contains(":task/") }
      if let first = words.first { return first }
    }
    return nil
  }

  /// Polls the task until it is STOPPED; after ``timeoutSeconds`` it is stopped and fails.
  /// `earlier`: an earlier run started it, so ECS not knowing it means it stopped long ago.
  func follow(_ context: ProcedureContext, taskArn: String, earlier: Bool = false) async throws
    -> Ending
  {
    let started = Date()
    var last = ""
    while true {
      let answer = try await context.answer(
        TasksAnswer.self, of: Self.describeTask(.text(taskArn)))
      // Just after run-task, ECS may not know the task yet (eventual consistency): ask again.
      // A task an earlier run started that ECS does not know stopped over an hour ago.
      if earlier, answer.tasks.isEmpty, answer.failures.contains(where: { $0.reason == "MISSING" })
      {
        throw ProcedureFailure(
          "task \(Self.short(taskArn)), which an earlier run started, is no longer known to ECS (stopped tasks stay about an hour): whether it succeeded cannot be told. Its log lines are in \(logGroup); 'runbook reset' of this step forgets it, and the next run starts the task again"
        )
      }
      if let task = answer.tasks.first {
        let status = task.lastStatus ?? "?"
        if status != last {
          context.progress("task \(Self.short(taskArn)): \(status)")
          last = status
        }
        if status == "STOPPED" {
          let container =
            task.containers.first { $0.name == self.container } ?? task.containers.first
          let ending = Ending(
            taskArn: taskArn, exitCode: container?.exitCode, stoppedReason: task.stoppedReason,
            containerReason: container?.reason)
          if !ending.succeeded || showsLogs { await showLogs(context, taskArn: taskArn) }
          return ending
        }
      }
      let elapsed = Date().timeIntervalSince(started)
      if elapsed >= Double(timeoutSeconds) {
        _ = try? await context.run(
          .aws(
            "ecs", "stop-task", "--cluster", .ref("CLUSTER_ARN"), "--task", .text(taskArn),
            "--reason", .text("runbook: not stopped after \(timeoutSeconds) s"), "--query",
            "task.lastStatus", "--output", "text"))
        throw ProcedureFailure(
          "task \(Self.short(taskArn)) was still \(last.isEmpty ? "unknown" : last) after \(timeoutSeconds) s: stopped it"
        )
      }
      try await context.sleep(
        seconds: min(Double(pollSeconds), max(0.1, Double(timeoutSeconds) - elapsed)))
    }
  }

  /// The task's last log lines, each as a progress line.
  private func showLogs(_ context: ProcedureContext, taskArn: String) async {
    let taskID = Self.short(taskArn)
    let command = logEvents(taskID: taskID)
    guard let result = try? await context.run(command) else { return }
    let lines =
      result.succeeded
      ? (JSONValue(parsing: result.stdoutText)?.arrayValue ?? []).compactMap(\.stringValue) : []
    if lines.isEmpty {
      context.progress("no log lines in \(logGroup) (stream ecs/\(container)/\(taskID))")
      return
    }
    context.progress("last \(lines.count) log line(s) of \(container) (\(logGroup)):")
    for line in lines { context.progress("  | " + line.trimmingCharacters(in: .newlines)) }
  }

  /// 12 hex digits of the SHA-256 of `text`.
  static func hash(_ text: String) -> String {
    SHA256.digest(Data(text.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
  }

  /// `0b4c…` for a task ARN: its id.
  static func short(_ arn: String) -> String {
    String(arn.split(separator: "/").last ?? Substring(arn))
  }
}
