import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess

/// The private DNS namespace: created, waited for, deleted. Cloud Map answers a namespace's
/// create and delete with an operation id, and the work is done when `get-operation` says
/// `SUCCESS` (`SUBMITTED` and `PENDING` before; `FAIL` with an `ErrorMessage`).
/// "CreatePrivateDnsNamespace": https://docs.aws.amazon.com/cloud-map/latest/api/API_CreatePrivateDnsNamespace.html,
/// "GetOperation": https://docs.aws.amazon.com/cloud-map/latest/api/API_GetOperation.html
extension ServiceDiscovery {
  /// Lists the private namespace of this deployment's name: after a run killed between the
  /// create and its record, this finds what it made (the name carries the deployment's name).
  static func findNamespace(_ deployment: Deployment) -> Command {
    .aws(
      "servicediscovery", "list-namespaces", "--query",
      .text("Namespaces[?Name=='\(namespace(deployment))' && Type=='DNS_PRIVATE'].Id"),
      "--output", "text")
  }

  static func getOperation(_ operation: Argument) -> Command {
    .aws(
      "servicediscovery", "get-operation", "--operation-id", operation,
      "--query", "Operation.[Status,Targets.NAMESPACE,ErrorMessage]", "--output", "text")
  }

  /// The create (its operation id exported as `NAMESPACE_CREATION`; after a kill, the lookup
  /// finds the namespace itself), then the wait for the operation, which exports `NAMESPACE_ID`
  /// and leaves `NAMESPACE_CREATION` naming the namespace too.
  static func namespaceActions(_ deployment: Deployment, step: String) -> [Action] {
    let name = namespace(deployment)
    var create = Action.create(
      "discovery-namespace", "create the private DNS namespace \(name) in the VPC",
      export: "NAMESPACE_CREATION", pattern: #"^(ns-[a-z0-9]+|[A-Za-z0-9-]{8,})$"#,
      command: .aws(
        "servicediscovery", "create-private-dns-namespace", "--name", .text(name), "--vpc",
        .ref("VPC_ID"), "--description", .text("Service names of \(deployment.name) (runbook)"),
        "--tags", deployment.tagList(name: name, action: "\(step)/discovery-namespace"),
        "--query", "OperationId", "--output", "text"),
      lookup: findNamespace(deployment))
    // A rerun that forgot the step (`runbook reset ecs`) finds the namespace by its name (which
    // carries the deployment's): Cloud Map refuses a second one of that name in the VPC. In a VPC
    // made in this very run there is nothing to look for.
    create.precheck = .exists(
      findNamespace(deployment), rule: "the namespace \(name) exists",
      pattern: namespacePattern)
    create.settledBy = .nothingToFind(whenCreated: "vpc", inStep: "network")
    let operation = getOperation(.ref("NAMESPACE_CREATION"))
    let timeout = operationTimeoutSeconds
    let wait = Procedure(
      "wait until the namespace \(name) is created",
      outline: [
        .command(operation),
        .note("until SUCCESS (SUBMITTED, PENDING before), then NAMESPACE_ID is Targets.NAMESPACE"),
      ],
      requires: ["NAMESPACE_CREATION"]
    ) { context in
      let creation = context.values["NAMESPACE_CREATION"] ?? ""
      // Found by the lookup after an interrupted run: the namespace itself, created already.
      if creation.hasPrefix("ns-") { return creation }
      let id = try await awaitOperation(context, operation, timeout: timeout, what: "creation")
      // The operation is over: from now on the export names the namespace, as it does when a
      // rerun finds the namespace (a kill, `runbook reset ecs`), so both leave the same exports.
      if id.hasPrefix("ns-") { try await context.record(export: "NAMESPACE_CREATION", value: id) }
      return id
    }
    return [
      create,
      Action(
        name: "discovery-namespace-created", summary: "wait until the namespace \(name) is created",
        effect: .read, command: operation,
        capture: Capture(export: "NAMESPACE_ID", pattern: namespacePattern),
        after: ["discovery-namespace"], procedure: wait),
    ]
  }

  /// Polls a namespace operation until `SUCCESS` (its namespace id) or `FAIL` (its message).
  static func awaitOperation(
    _ context: ProcedureContext, _ operation: Command, timeout: Double, what: String
  ) async throws -> String {
    let start = Date()
    var delay = 2.0
    var last = ""
    while true {
      let words = try await context.output(operation).split(separator: "\t").map {
        $0.trimmingCharacters(in: .whitespacesAndNewlines)
      }
      let status = words.first ?? ""
      switch status {
      case "SUCCESS":
        return words.count > 1 ? words[1] : ""
      case "FAIL":
        let message = words.count > 2 ? words[2] : "no message"
        throw ProcedureFailure(
          "the namespace \(what) failed: \(message)", command: context.shown(operation))
      default:
        if status != last { context.progress("namespace \(what): \(status)") }
        last = status
      }
      guard Date().timeIntervalSince(start) < timeout else {
        throw ProcedureFailure(
          "the namespace \(what) is still \(status) after \(Int(timeout)) s",
          command: context.shown(operation))
      }
      try await context.sleep(seconds: delay)
      delay = min(delay * 2, 15)
    }
  }

  /// `delete-namespace`, then its operation waited for. A namespace already gone (an earlier,
  /// interrupted destroy finished it) is done; a deletion still running is waited for by name.
  /// A run that stopped between the create and the wait for it (another step failed, or a kill)
  /// recorded only the create's operation: its namespace id is read from that operation.
  static func deleteNamespace(_ deployment: Deployment, after: [String]) -> Action {
    let name = namespace(deployment)
    let delete = { @Sendable (id: Argument) in
      Command.aws(
        "servicediscovery", "delete-namespace", "--id", id, "--query", "OperationId", "--output",
        "text")
    }
    let operation = getOperation(.ref("NAMESPACE_DELETION"))
    let find = findNamespace(deployment)
    let timeout = operationTimeoutSeconds
    // Service Connect made a Cloud Map service per ECS service (its discovery name) that deleting
    // the ECS service leaves behind: those go first, or the namespace is `ResourceInUse`.
    let discoveryNames = Set(deployment.services.map(\.name))
    let listServices = { @Sendable (id: Argument) in
      Command.aws(
        "servicediscovery", "list-services", "--filters",
        #"[{"Name":"NAMESPACE_ID","Values":["\#(id)"],"Condition":"EQ"}]"#,
        "--query", "Services[].[Id,Name]", "--output", "text")
    }
    let procedure = Procedure(
      "delete the namespace \(name)",
      outline: [
        .command(listServices(.ref("NAMESPACE_ID"))),
        .note("delete-service of those Service Connect made (named after the ECS services)"),
        .command(delete(.ref("NAMESPACE_ID"))), .command(operation), .note("until SUCCESS"),
      ],
      requires: ["NAMESPACE_CREATION"]
    ) { context in
      var namespaceID = context.values["NAMESPACE_ID"] ?? ""
      if namespaceID.isEmpty {
        let creation = context.values["NAMESPACE_CREATION"] ?? ""
        namespaceID =
          creation.hasPrefix("ns-")
          ? creation
          : try await awaitOperation(
            context, getOperation(.text(creation)), timeout: timeout, what: "creation")
      }
      let listServices = listServices(.text(namespaceID))
      let delete = delete(.text(namespaceID))
      let listed = try await context.run(listServices)
      for line in listed.succeeded ? listed.stdoutText.split(separator: "\n") : [] {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        guard words.count == 2, discoveryNames.contains(words[1]) else { continue }
        let command = Command.aws("servicediscovery", "delete-service", "--id", .text(words[0]))
        let result = try await context.run(command)
        if !result.succeeded, awsErrorCode(in: result.stderrText) != "ServiceNotFound" {
          throw context.failure(of: command, result)
        }
      }
      let result = try await context.run(delete)
      if result.succeeded {
        let id = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try await awaitOperation(
          context, getOperation(.text(id)), timeout: timeout, what: "deletion")
        return "deleted"
      }
      switch awsErrorCode(in: result.stderrText) {
      case "NamespaceNotFound":
        return "gone"
      case "DuplicateRequest":
        // The deletion an interrupted destroy asked for is still running: wait until it is gone.
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
          let ids = try await context.output(find).split(whereSeparator: \.isWhitespace)
          if !ids.contains(where: { $0 == namespaceID }) {
            return "deleted"
          }
          try await context.sleep(seconds: 5)
        }
        throw ProcedureFailure("the namespace \(name) is still there after \(Int(timeout)) s")
      default:
        throw context.failure(of: delete, result)
      }
    }
    return Action(
      name: "delete-discovery-namespace", summary: "delete the namespace \(name), waited for",
      effect: .write, command: delete(.ref("NAMESPACE_ID")), after: after, procedure: procedure,
      deletes: "discovery-namespace")
  }
}
