import RunbookEngine
import RunbookProcess

extension Deployment {
  /// A CloudWatch Logs group with this deployment's tags, and how long it keeps its lines:
  /// `create-log-group` (found by its name after an interruption), then `put-retention-policy`
  /// when the group does not keep them that long already. The retention is set only on a group
  /// this deployment made: a group that existed already (another team's, with its own retention)
  /// is used as it is, as cutting its retention would make AWS delete that team's older lines.
  /// The actions are `log-group-<suffix>` and `log-retention-<suffix>`.
  func logGroupActions(_ group: String, suffix: String, step: String, retentionDays: Int)
    -> [Action]
  {
    let find = { (condition: String) in
      Command.aws(
        "logs", "describe-log-groups", "--log-group-name-prefix", .text(group),
        "--query", "logGroups[?logGroupName=='\(group)'\(condition)].logGroupName", "--output",
        "text")
    }
    var create = Action(
      name: "log-group-\(suffix)", summary: "create log group \(group)", effect: .write,
      command: .aws(
        "logs", "create-log-group", "--log-group-name", .text(group),
        "--tags", tagMap(name: group, action: "\(step)/log-group-\(suffix)")),
      lookup: Lookup(find(""), pattern: exactPattern(group)))
    create.alreadyDoneErrors = ["ResourceAlreadyExistsException"]
    var retention = Action(
      name: "log-retention-\(suffix)", summary: "keep \(group) for \(retentionDays) days",
      effect: .write,
      command: .aws(
        "logs", "put-retention-policy", "--log-group-name", .text(group),
        "--retention-in-days", "\(retentionDays)"),
      lookup: Lookup(
        find(" && retentionInDays==`\(retentionDays)`"), pattern: exactPattern(group)),
      after: ["log-group-\(suffix)"])
    retention.configures = "log-group-\(suffix)"
    return [create, retention]
  }

  /// The log group of ``logGroupActions(_:suffix:step:retentionDays:)`` deleted, with its lines.
  func logGroupTeardown(_ group: String, suffix: String, after: [String]) -> Action {
    Action(
      name: "delete-log-group-\(suffix)", summary: "delete log group \(group)", effect: .write,
      command: .aws("logs", "delete-log-group", "--log-group-name", .text(group)),
      alreadyDoneErrors: ["ResourceNotFoundException"], after: after,
      deletes: "log-group-\(suffix)")
  }
}
