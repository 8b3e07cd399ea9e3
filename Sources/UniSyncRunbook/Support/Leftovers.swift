import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// The end of `destroy`: a scan for anything still tagged with this deployment, printed with what
/// it costs a month.
///
/// The Resource Groups Tagging API finds most resources by their `runbook:deployment` tag in one
/// call. What it does not list (IAM roles; and, in the local emulator, Elastic IPs, ECR
/// repositories and DB subnet groups) is looked up by the names the configuration gives them.
/// Some deleted resources stay listed for a while (inactive clusters, services and task
/// definitions, deleted NAT gateways, secrets waiting for their recovery window): they are
/// checked and not counted as left.
struct LeftoverScanStep: Step {
  let id = "leftovers"
  let section = "-"
  let title = "What is still tagged with the deployment"
  var runsByDefault: Bool { false }

  func actions(for deployment: Deployment) -> [Action] {
    let name = deployment.name
    let tagFilter: Argument = .text(
      #"[{"Key":"# + jsonString(OwnershipTag.deployment) + #","Values":["# + jsonString(name)
        + "]}]")
    let tagged = Command.aws(
      "resourcegroupstaggingapi", "get-resources", "--tag-filters", tagFilter,
      "--query", "ResourceTagMappingList[].ResourceARN", "--output", "json")
    let addresses = Command.aws(
      "ec2", "describe-addresses", "--filters",
      ec2Filters([("tag:\(OwnershipTag.deployment)", [name])]),
      "--query", "Addresses[].[AllocationId,PublicIp]", "--output", "json")
    let prefix = deployment.ecr.repositoryPrefix + "/"
    let repositories = Command.aws(
      "ecr", "describe-repositories",
      "--query", "repositories[?starts_with(repositoryName, '\(prefix)')].repositoryArn",
      "--output", "json")
    let roleNames = [deployment.ecs.executionRole, deployment.lambda.roleName]
    let roles = Command.aws(
      "iam", "list-roles",
      "--query",
      .text("Roles[?" + roleNames.map { "RoleName=='\($0)'" }.joined(separator: " || ") + "].Arn"),
      "--output", "json")
    let subnetGroup = deployment.rds.subnetGroupName.lowercased()
    let subnetGroups = Command.aws(
      "rds", "describe-db-subnet-groups",
      "--query", "DBSubnetGroups[?DBSubnetGroupName=='\(subnetGroup)'].DBSubnetGroupArn",
      "--output", "json")
    let outline: [Procedure.Line] = [
      .command(tagged), .command(addresses), .command(repositories), .command(roles),
      .command(subnetGroups),
      .note(
        "then, for what these list: its tags, and whether it is really still there (inactive, deleted, pending deletion)"
      ),
    ]
    let procedure = Procedure(
      "scan for resources tagged \(OwnershipTag.deployment)=\(name)", outline: outline
    ) {
      context in
      var scan = Scan(context: context, deployment: deployment)
      // The first looks are independent: all at once.
      async let taggedText = context.output(tagged)
      async let addressText = context.output(addresses)
      async let repositoryText = context.output(repositories)
      async let roleText = context.output(roles)
      async let groupText = context.output(subnetGroups)
      for arn in Scan.strings(JSONValue(parsing: try await taggedText)) { scan.found.insert(arn) }
      for pair in Scan.lists(JSONValue(parsing: try await addressText)) where pair.count == 2 {
        scan.addAddress(
          allocation: pair[0].stringValue ?? "", publicIP: pair[1].stringValue ?? "")
      }
      // Found by name: counted when their own tag names the deployment.
      let tag = "[?Key=='\(OwnershipTag.deployment)'].Value | [0]"
      let byName: [([String], (String) -> Command)] = [
        (
          Scan.strings(JSONValue(parsing: try await repositoryText)),
          {
            .aws(
              "ecr", "list-tags-for-resource", "--resource-arn", .text($0), "--query",
              .text("tags" + tag), "--output", "text")
          }
        ),
        (
          Scan.strings(JSONValue(parsing: try await roleText)),
          {
            .aws(
              "iam", "list-role-tags", "--role-name",
              .text(String($0.split(separator: "/").last ?? "")), "--query",
              .text("Tags" + tag), "--output", "text")
          }
        ),
        (
          Scan.strings(JSONValue(parsing: try await groupText)),
          {
            .aws(
              "rds", "list-tags-for-resource", "--resource-name", .text($0), "--query",
              .text("TagList" + tag), "--output", "text")
          }
        ),
      ]
      for (arns, tags) in byName {
        for arn in arns { try await scan.keepIfTagged(arn, tags(arn)) }
      }
      try await scan.dropDeleted()
      return scan.report()
    }
    return [
      Action(
        name: "scan",
        summary: "look for anything still tagged \(OwnershipTag.deployment)=\(name), and its cost",
        effect: .read, command: tagged, procedure: procedure, repeatable: true)
    ]
  }
}

/// What the scan found, and what it is.
private struct Scan {
  let context: ProcedureContext
  /// ARNs (an Elastic IP: a made-up ARN with its address) of what is tagged with the deployment.
  var found = Set<String>()
  /// Deleted, but still listed for a while: shown, not counted.
  var pending: [String] = []
  /// Kept on purpose (a final snapshot).
  var kept: [String] = []

  let deployment: Deployment

  init(context: ProcedureContext, deployment: Deployment) {
    self.context = context
    self.deployment = deployment
  }

  /// A command's JSON answer (its failure, or an output that is not JSON, fails the scan).
  func json(_ command: Command) async throws -> JSONValue {
    try await context.answer(JSONValue.self, of: command)
  }

  /// The strings of a JSON list (`--query 'Things[].Arn'`).
  static func strings(_ value: JSONValue?) -> [String] {
    value?.arrayValue?.compactMap(\.stringValue) ?? []
  }

  /// The lists of a JSON list of lists (`--query 'Things[].[Id,State]'`).
  static func lists(_ value: JSONValue?) -> [[JSONValue]] {
    value?.arrayValue?.compactMap(\.arrayValue) ?? []
  }

  func strings(_ command: Command) async throws -> [String] {
    Self.strings(try await json(command))
  }

  /// Counts an Elastic IP once: the tagging API may list it already (`…:elastic-ip/eipalloc-…`),
  /// and the address is shown beside it. (Its public IPv4 charge is counted on the address alone:
  /// the NAT gateway's price is its hourly charge, and its network interface costs nothing more.)
  mutating func addAddress(allocation: String, publicIP: String) {
    let arn =
      "arn:aws:ec2:\(context.values[ContextValue.region] ?? ""):\(context.values[ContextValue.account] ?? ""):elastic-ip/\(allocation)"
    found = found.filter { !$0.hasSuffix(":elastic-ip/\(allocation)") }
    found.insert("\(arn) (\(publicIP))")
  }

  /// Counts `arn` when its `runbook:deployment` tag (the command's output) names this deployment.
  mutating func keepIfTagged(_ arn: String, _ command: Command) async throws {
    let result = try await context.run(command)
    if result.succeeded,
      result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == deployment.name
    {
      found.insert(arn)
    }
  }

  /// Drops what the tagging API still lists after its deletion, asking each service once.
  mutating func dropDeleted() async throws {
    func of(_ kind: String) -> [String] { found.filter { $0.contains(kind) }.sorted() }
    // ECS: task definitions stay listed when INACTIVE, clusters and services when INACTIVE.
    if !of(":task-definition/").isEmpty {
      let active = Set(
        try await strings(
          .aws(
            "ecs", "list-task-definitions", "--status", "ACTIVE", "--query", "taskDefinitionArns",
            "--output", "json")))
      for arn in of(":task-definition/") where !active.contains(arn) { found.remove(arn) }
    }
    let services = Dictionary(grouping: of(":service/")) { arn -> String in
      let parts = arn.split(separator: "/")
      return parts.count >= 3 ? String(parts[parts.count - 2]) : ""
    }
    for (cluster, arns) in services {
      for chunk in stride(from: 0, to: arns.count, by: 10).map({
        Array(arns[$0..<min($0 + 10, arns.count)])
      }) {
        let live = try await pairs(
          .aws(
            ["ecs", "describe-services", "--cluster", .text(cluster), "--services"]
              + chunk.map { Argument.text($0) }
              + ["--query", "services[].[serviceArn,status]", "--output", "json"]))
        for arn in chunk where !["ACTIVE", "DRAINING"].contains(live[arn] ?? "") {
          found.remove(arn)
        }
      }
    }
    let clusters = of(":cluster/")
    if !clusters.isEmpty {
      let live = try await pairs(
        .aws(
          ["ecs", "describe-clusters", "--clusters"] + clusters.map { Argument.text($0) }
            + ["--query", "clusters[].[clusterArn,status]", "--output", "json"]))
      for arn in clusters where live[arn] != "ACTIVE" { found.remove(arn) }
    }
    let gateways = of(":natgateway/")
    if !gateways.isEmpty {
      let ids = gateways.map { String($0.split(separator: "/").last ?? "") }
      let live = try await pairs(
        .aws(
          "ec2", "describe-nat-gateways", "--filter", ec2Filters([("nat-gateway-id", ids)]),
          "--query", "NatGateways[].[NatGatewayId,State]", "--output", "json"))
      for (arn, id) in zip(gateways, ids)
      where ["deleted", "deleting", ""].contains(live[id] ?? "") {
        found.remove(arn)
      }
    }
    let secrets = of(":secretsmanager:")
    if !secrets.isEmpty {
      let listed = Self.lists(
        try await json(
          .aws(
            "secretsmanager", "list-secrets", "--include-planned-deletion",
            "--query", "SecretList[].[ARN,DeletedDate]", "--output", "json")))
      var deletion: [String: Bool] = [:]
      for entry in listed {
        if let arn = entry.first?.stringValue {
          deletion[arn] = entry.count > 1 && entry[1] != .null
        }
      }
      for arn in secrets where deletion[arn] != false {
        found.remove(arn)
        if deletion[arn] == true {
          pending.append("\(arn) (scheduled for deletion; restorable until then)")
        }
      }
    }
    // The final snapshot carries the deployment's tags (copied from the instance): kept on
    // purpose, but it costs storage every month until someone deletes it.
    for arn in of(":snapshot:") {
      found.remove(arn)
      kept.append(arn)
    }
  }

  /// `[[key, value], ...]` output as a dictionary.
  func pairs(_ command: Command) async throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in Self.lists(try await json(command)) where pair.count == 2 {
      if let key = pair[0].stringValue { result[key] = pair[1].stringValue ?? "" }
    }
    return result
  }

  /// A command's trimmed output; empty when it fails (the resource is gone).
  func text(_ command: Command) async throws -> String {
    let result = try await context.run(command)
    return result.succeeded ? result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) : ""
  }

  /// Prints what is left with its monthly cost; returns a one-line summary.
  func report() -> String {
    let prices = CostEstimate.load(for: deployment)
    var total = 0.0
    if found.isEmpty {
      context.progress(
        "nothing tagged \(OwnershipTag.deployment)=\(deployment.name) is left"
          + (kept.isEmpty ? "" : " but what is kept on purpose"))
    } else {
      context.progress("still tagged \(OwnershipTag.deployment)=\(deployment.name):")
    }
    for arn in found.sorted() {
      let monthly = prices.flatMap { monthlyCost(of: arn, $0) }
      total += monthly ?? 0
      let cost =
        monthly.map { String(format: "about %.2f %@ a month", $0, prices?.currency ?? "USD") }
        ?? "little or no cost"
      context.progress("  \(arn): \(cost)")
    }
    if !pending.isEmpty { context.progress("deleted, but still listed for a while (no cost):") }
    for line in pending { context.progress("  \(line)") }
    if !kept.isEmpty { context.progress("kept on purpose:") }
    for arn in kept {
      let monthly = prices.map { $0.databaseSnapshotMonth(deployment.rds) }
      let cost =
        monthly.map {
          String(
            format: "about %.2f %@ a month (snapshot storage, at most %d GB)", $0,
            prices?.currency ?? "USD", deployment.rds.allocatedStorageGB)
        } ?? "snapshot storage"
      context.progress(
        "  \(arn) (final snapshot): \(cost); delete it when no longer needed: aws rds delete-db-snapshot --db-snapshot-identifier \(arn.split(separator: ":").last ?? "")"
      )
    }
    if !found.isEmpty {
      context.progress(
        String(format: "total: about %.2f %@ a month", total, prices?.currency ?? "USD")
          + "; delete these by hand (they were not in this checkpoint: another checkpoint, or made by hand with the tag)"
      )
    }
    return found.isEmpty ? "nothing left" : "\(found.count) left"
  }

  /// What the resource of `arn` costs a month, by its kind; nil for what costs little or nothing.
  func monthlyCost(of arn: String, _ prices: CostEstimate.Prices) -> Double? {
    let rds = deployment.rds
    if arn.contains(":natgateway/") { return prices.natGatewayMonth }
    if arn.contains(":elastic-ip/") { return prices.publicIPv4Month }
    if arn.contains(":loadbalancer/") { return prices.loadBalancerMonth }
    if arn.contains(":rds:") && arn.contains(":db:") {
      return (prices.databaseInstanceMonth(rds) ?? 0) + prices.databaseStorageMonth(rds)
    }
    if arn.contains(":secretsmanager:") { return prices.secretMonth }
    if arn.contains(":service/") {
      // One service's tasks.
      return prices.fargateMonth(tasks: deployment.ecs.desiredCount, of: deployment.ecs)
    }
    return nil
  }
}
