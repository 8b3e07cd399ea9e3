import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// The least-privilege IAM policy an operator's credentials need to run steps and destroy them
/// (`runbook policy`): every action derived from the very `Command` values the steps run, plus
/// what AWS checks besides the call (passing the roles, service-linked roles, tags on create).
package struct OperatorPolicy {
  /// One `Allow` statement.
  package struct Statement: Equatable {
    package var sid: String
    package var actions: [String]
    package var resources: [String]
    /// `operator -> key -> values`, e.g. `StringEquals -> iam:PassedToService -> [...]`.
    package var condition: [String: [String: [String]]] = [:]
  }

  package var statements: [Statement]

  /// The policy for `steps` (run and destroyed) of `deployment`; with `s3State`, the state store's
  /// objects under that location too.
  package init(steps: [any GuideStep], deployment: Deployment, s3State: S3Location? = nil) {
    let commands = Self.commands(steps: steps, deployment: deployment)
    var byPrefix: [String: Set<String>] = [:]
    for action in commands.flatMap(IAMActions.actions(of:)) {
      let prefix = String(action.prefix(while: { $0 != ":" }))
      byPrefix[prefix, default: []].insert(action)
    }
    // A push to ECR (and a look at what is there) is authorized on the repository as ECR actions.
    for command in commands where command.tool != AWSCLI.tool {
      for action in PolicyScopes.registryActions[command.operation] ?? [] {
        byPrefix["ecr", default: []].insert(action)
      }
    }
    // Tags given at creation are authorized as the service's tagging action besides the create.
    var tagged: [String: Set<String>] = [:]
    for command in commands where command.tool == AWSCLI.tool && Self.tagsOnCreate(command) {
      for action in IAMActions.actions(of: command) {
        tagged[String(action.prefix(while: { $0 != ":" })), default: []].insert(action)
      }
    }
    for prefix in tagged.keys where prefix != "ec2" {
      byPrefix[prefix, default: []].formUnion(PolicyScopes.tagOnCreate[prefix] ?? [])
    }
    var statements: [Statement] = []
    for prefix in byPrefix.keys.sorted() {
      statements += PolicyScopes.statements(
        prefix: prefix, actions: byPrefix[prefix] ?? [], deployment: deployment)
    }
    if let ec2Creates = tagged["ec2"], !ec2Creates.isEmpty {
      statements.append(
        Statement(
          sid: "Ec2TagsOnCreate", actions: ["ec2:CreateTags"], resources: ["*"],
          condition: [
            "StringEquals": [
              "ec2:CreateAction": ec2Creates.map { String($0.dropFirst("ec2:".count)) }.sorted()
            ]
          ]))
    }
    statements += PolicyScopes.besidesTheCall(
      steps: Set(steps.map(\.id)), deployment: deployment)
    if let s3State { statements += PolicyScopes.stateStore(s3State) }
    self.statements = statements
  }

  /// Every command the steps and their teardowns can run: the command, its lookups, precheck,
  /// wait and overwrite, a procedure's outline, and the account check made before any run.
  package static func commands(steps: [any GuideStep], deployment: Deployment) -> [Command] {
    var actions: [Action] = []
    for step in steps {
      actions += step.actions(for: deployment)
      actions += step.teardown(for: deployment)
    }
    // A destroy of every step ends with a scan for anything still tagged with the deployment.
    if Set(Catalogue.steps.map(\.id)).isSubset(of: steps.map(\.id)) {
      actions += Catalogue.leftoverScan.actions(for: deployment)
    }
    // `runbook drift`'s look for resources tagged with the deployment that it does not record.
    var commands: [Command] = [AWSCLI.callerAccount, deployment.driftInventory.command]
    for action in actions {
      if !action.isManual { commands.append(action.command) }
      commands += [
        action.lookup?.command, action.adoptLookup?.command, action.existingLookup?.command,
        action.precheck?.command, action.precheck?.ownership?.command, action.wait?.command,
        action.overwrite,
        // `runbook drift` reads these back.
        action.observation?.command, action.observation?.presence,
      ].compactMap { $0 }
      commands += action.procedure?.commands ?? []
    }
    return commands
  }

  /// Whether a command tags what it creates (`--tags`, `--tag-specifications`).
  static func tagsOnCreate(_ command: Command) -> Bool {
    let words = command.arguments.map(\.description)
    guard words.count >= 2,
      words[1].hasPrefix("create-") || words[1] == "allocate-address"
        || words[1] == "register-task-definition"
    else { return false }
    return words.contains("--tags") || words.contains("--tag-specifications")
  }

  /// The policy document as JSON (`Version` 2012-10-17), two-space indented.
  package func json() -> String {
    func list(_ values: [String]) -> String {
      values.count == 1
        ? jsonString(values[0]) : "[" + values.map(jsonString).joined(separator: ", ") + "]"
    }
    var text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n"
    text += statements.map { statement in
      var lines = [
        "      \"Sid\": \(jsonString(statement.sid))", "      \"Effect\": \"Allow\"",
        "      \"Action\": \(list(statement.actions))",
        "      \"Resource\": \(list(statement.resources))",
      ]
      if !statement.condition.isEmpty {
        let operators = statement.condition.keys.sorted().map { op in
          let keys = (statement.condition[op] ?? [:]).sorted { $0.key < $1.key }.map {
            "\(jsonString($0.key)): \(list($0.value))"
          }
          return "\(jsonString(op)): { " + keys.joined(separator: ", ") + " }"
        }
        lines.append("      \"Condition\": { " + operators.joined(separator: ", ") + " }")
      }
      return "    {\n" + lines.joined(separator: ",\n") + "\n    }"
    }.joined(separator: ",\n")
    return text + "\n  ]\n}\n"
  }

  /// Every action the policy allows.
  package var actions: Set<String> { Set(statements.flatMap(\.actions)) }
}
