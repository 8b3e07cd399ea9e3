import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// The Docker engine and registry started by `make test` (scripts/docker-env.sh). Tests that need
/// them fail, never skip, without them.
enum DockerEnvironment {
  /// `127.0.0.1:PORT` of the registry (user AWS, password: the emulator's ECR token).
  static func registry() throws -> String {
    let variables = ProcessInfo.processInfo.environment
    guard let host = variables["DOCKER_HOST"], !host.isEmpty else {
      throw HarnessError.missing(
        "DOCKER_HOST is not set: run the integration tests through 'make test', which starts dockerd (scripts/docker-env.sh)"
      )
    }
    guard let registry = variables["RUNBOOK_TEST_REGISTRY"], !registry.isEmpty else {
      throw HarnessError.missing(
        "RUNBOOK_TEST_REGISTRY is not set: run the integration tests through 'make test', which starts the registry (scripts/docker-env.sh)"
      )
    }
    return registry
  }

  /// GETs `path` from the registry with basic auth; returns the JSON body and the response headers.
  static func get(_ path: String, password: String, accept: String? = nil) throws
    -> (body: Any, headers: [String: String])
  {
    let url = URL(string: "http://\(try registry())\(path)")!
    var request = URLRequest(url: url)
    let credentials = Data("AWS:\(password)".utf8).base64EncodedString()
    request.setValue("Basic \(credentials)", forHTTPHeaderField: "Authorization")
    if let accept { request.setValue(accept, forHTTPHeaderField: "Accept") }
    final class Box: @unchecked Sendable {
      var data: Data?
      var response: HTTPURLResponse?
      var error: Error?
    }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    URLSession.shared.dataTask(with: request) { data, response, error in
      box.data = data
      box.response = response as? HTTPURLResponse
      box.error = error
      done.signal()
    }.resume()
    done.wait()
    if let error = box.error { throw error }
    guard box.response?.statusCode == 200, let data = box.data else {
      throw HarnessError.missing("registry GET \(path) answered \(box.response?.statusCode ?? 0)")
    }
    var headers: [String: String] = [:]
    for (key, value) in box.response?.allHeaderFields ?? [:] {
      if let key = key as? String, let value = value as? String {
        headers[key.lowercased()] = value
      }
    }
    return (try JSONSerialization.jsonObject(with: data), headers)
  }
}

/// Runs the real aws CLI (through the shim) against the emulator; the parsed JSON output.
/// (A free function of Sendable values, so inventories can ask several things at once.)
func awsJSON(_ endpoint: String, _ arguments: [String]) async throws -> [String: Any] {
  try await awsOutput(endpoint, arguments) as? [String: Any] ?? [:]
}

/// The names the ecr, ecs and lambda steps give their resources, as a configuration edit.
struct ResourceNames: Sendable {
  var prefix: String
  var cluster: String
  var executionRole: String
  var loadBalancer: String
  var targetGroup: String
  var function: String
  var lambdaRole: String
  /// The role the services' containers run as.
  var taskRole: String { "\(prefix)-ecs-task-role" }

  /// The configuration's own names (runbooks/local.json).
  static let guide = ResourceNames(
    prefix: "unisync", cluster: "unisync-cluster", executionRole: "ecsTaskExecutionRole",
    loadBalancer: "unisync-alb", targetGroup: "unisync-api-gateway-tg",
    function: "canvas-sync-lambda",
    lambdaRole: "unisync-lambda-execution-role")

  /// Names of their own, so a second set of resources can live beside the first in one emulator.
  static func other(_ prefix: String) -> ResourceNames {
    ResourceNames(
      prefix: prefix, cluster: "\(prefix)-cluster", executionRole: "\(prefix)TaskExecutionRole",
      loadBalancer: "\(prefix)-alb", targetGroup: "\(prefix)-tg", function: "\(prefix)-sync-lambda",
      lambdaRole: "\(prefix)-lambda-role")
  }

  func apply(to config: inout [String: Any]) {
    let settings: [String: [String: String]] = [
      "ecr": ["repositoryPrefix": prefix],
      "ecs": [
        "familyPrefix": prefix, "cluster": cluster, "executionRole": executionRole,
        "taskRole": taskRole,
        "loadBalancer": loadBalancer,
        "targetGroup": targetGroup,
      ],
      "lambda": ["functionName": function, "roleName": lambdaRole],
    ]
    for (section, values) in settings {
      var object = config[section] as? [String: Any] ?? [:]
      object.merge(values) { _, new in new }
      config[section] = object
    }
  }

  static let services = ["api-gateway", "course-service", "schedule-service", "user-service"]

  /// What an uninterrupted run of ecr, ecs and lambda leaves (`tag`: the run's IMAGE_TAG).
  func expectedInventory(tag: String) -> [String: [String]] {
    let services = Self.services
    return [
      "ecr": services.map { "\(prefix)/\($0) scanOnPush" },
      "registry": services.map {
        "\(prefix)/\($0): \([tag, "latest"].sorted().joined(separator: " "))"
      },
      "cluster": [cluster],
      "role": [
        "\(executionRole): AmazonECSTaskExecutionRolePolicy + SecretsManagerAccess",
        "\(lambdaRole): AWSLambdaBasicExecutionRole AWSLambdaVPCAccessExecutionRole + SQSAndSecretsManagerAccess",
        // No policy of its own by default: code in the containers gets no AWS access.
        "\(taskRole):  + ",
      ].sorted(),
      // The services' and the database task's (guide 3.3).
      "log-group": (services + ["db-setup"]).map { "/ecs/\(prefix)-\($0) 7 days" }.sorted(),
      "task-definition": (services + ["db-setup"]).map { "\(prefix)-\($0):1" }.sorted(),
      "load-balancer": ["\(loadBalancer) internet-facing public subnets, ALB_SG"],
      "target-group": ["\(targetGroup) HTTP 8080 ip /actuator/health"],
      "listener": ["\(loadBalancer) HTTP 80 -> \(targetGroup)"],
      "service": services.map { service in
        "\(service) \(prefix)-\(service):1 2 FARGATE private subnets, ECS_SG, no public IP"
          + (service == "api-gateway" ? ", \(targetGroup) api-gateway:8080" : "")
      },
      "function": [
        "\(function) python3.11 300 s 512 MB private subnets, ECS_SG, role \(lambdaRole)"
      ],
    ]
  }

  /// What exists, described in the words of ``expectedInventory(tag:)``, and the ARNs (and DNS
  /// name) of what there is exactly one of, under the names of the exports that should hold them.
  /// `exports` (the checkpoint's) name the subnets and groups the resources should use.
  /// (The registry keeps images from earlier test runs: of each repository's tags only this
  /// run's tag and `latest` are listed.)
  func inventory(endpoint: String, exports: [String: String], registryPassword: String)
    async throws -> (lines: [String: [String]], found: [String: String])
  {
    let prefix = prefix
    let tags = Set([exports["IMAGE_TAG"] ?? "?", "latest"])
    let privateSubnets = Set(["SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C"].compactMap { exports[$0] })
    let publicSubnets = Set(["SUBNET_PUBLIC_2A", "SUBNET_PUBLIC_2C"].compactMap { exports[$0] })
    func list(_ result: [String: Any], _ key: String) -> [[String: Any]] {
      result[key] as? [[String: Any]] ?? []
    }
    func subnets(_ ids: [String]) -> String {
      Set(ids) == privateSubnets
        ? "private subnets"
        : Set(ids) == publicSubnets ? "public subnets" : "subnets \(ids.sorted())"
    }
    func group(_ ids: [String]) -> String {
      ids == [exports["ECS_SG"] ?? "?"]
        ? "ECS_SG" : ids == [exports["ALB_SG"] ?? "?"] ? "ALB_SG" : "groups \(ids)"
    }
    func last(_ arn: String) -> String { String(arn.split(separator: "/").last ?? "") }
    var found: [String: String] = [:]
    func only(_ export: String, _ values: [String]) {
      if values.count == 1 { found[export] = values[0] }
    }

    async let repositories = awsJSON(endpoint, ["ecr", "describe-repositories"])
    async let families = awsJSON(endpoint, ["ecs", "list-task-definitions", "--status", "ACTIVE"])
    async let balancers = awsJSON(endpoint, ["elbv2", "describe-load-balancers"])
    async let groups = awsJSON(endpoint, ["elbv2", "describe-target-groups"])
    async let clusters = awsJSON(endpoint, ["ecs", "list-clusters"])
    async let functions = awsJSON(endpoint, ["lambda", "list-functions"])
    async let logGroups = awsJSON(
      endpoint, ["logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/\(prefix)-"])
    async let iam = awsJSON(
      endpoint, ["iam", "get-account-authorization-details", "--filter", "Role"])

    var inventory: [String: [String]] = [:]
    inventory["ecr"] = list(try await repositories, "repositories")
      .filter { ($0["repositoryName"] as? String ?? "").hasPrefix(prefix + "/") }
      .map {
        let scan =
          ($0["imageScanningConfiguration"] as? [String: Any])?["scanOnPush"] as? Bool == true
        return "\($0["repositoryName"] as? String ?? "?")" + (scan ? " scanOnPush" : "")
      }.sorted()

    let catalog = try DockerEnvironment.get("/v2/_catalog?n=1000", password: registryPassword).body
    let names = ((catalog as? [String: Any])?["repositories"] as? [String] ?? []).filter {
      $0.hasPrefix(prefix + "/")
    }
    inventory["registry"] = try names.sorted().map { name in
      let body = try DockerEnvironment.get("/v2/\(name)/tags/list", password: registryPassword).body
      let listed = ((body as? [String: Any])?["tags"] as? [String]) ?? []
      return "\(name): " + listed.filter(tags.contains).sorted().joined(separator: " ")
    }

    inventory["task-definition"] = ((try await families)["taskDefinitionArns"] as? [String] ?? [])
      .map(last)
      .filter { $0.hasPrefix(prefix + "-") }.sorted()

    let albs = list(try await balancers, "LoadBalancers").filter {
      $0["LoadBalancerName"] as? String == loadBalancer
    }
    only("ALB_ARN", albs.compactMap { $0["LoadBalancerArn"] as? String })
    only("ALB_DNS", albs.compactMap { $0["DNSName"] as? String })
    inventory["load-balancer"] = albs.map {
      let zones = ($0["AvailabilityZones"] as? [[String: Any]] ?? []).compactMap {
        $0["SubnetId"] as? String
      }
      return
        "\(loadBalancer) \($0["Scheme"] as? String ?? "?") \(subnets(zones)), \(group($0["SecurityGroups"] as? [String] ?? []))"
    }
    let targetGroups = list(try await groups, "TargetGroups")
    let tgNames = Dictionary(
      targetGroups.map {
        ($0["TargetGroupArn"] as? String ?? "", $0["TargetGroupName"] as? String ?? "")
      },
      uniquingKeysWith: { first, _ in first })
    let ours = targetGroups.filter { $0["TargetGroupName"] as? String == targetGroup }
    only("TG_ARN", ours.compactMap { $0["TargetGroupArn"] as? String })
    inventory["target-group"] = ours.map {
      "\(targetGroup) \($0["Protocol"] as? String ?? "?") \($0["Port"] as? Int ?? 0) \($0["TargetType"] as? String ?? "?") \($0["HealthCheckPath"] as? String ?? "?")"
    }
    let clusterArns = ((try await clusters)["clusterArns"] as? [String] ?? []).filter {
      last($0) == cluster
    }
    only("CLUSTER_ARN", clusterArns)
    inventory["cluster"] = clusterArns.map(last)

    // Second wave: what needs the first one's ARNs.
    var listeners: [String] = []
    var listenerArns: [String] = []
    for alb in albs {
      let result = try await awsJSON(
        endpoint,
        [
          "elbv2", "describe-listeners", "--load-balancer-arn",
          alb["LoadBalancerArn"] as? String ?? "",
        ])
      for listener in list(result, "Listeners") {
        let target =
          (listener["DefaultActions"] as? [[String: Any]])?.first?["TargetGroupArn"] as? String
          ?? "?"
        listenerArns.append(listener["ListenerArn"] as? String ?? "?")
        listeners.append(
          "\(loadBalancer) \(listener["Protocol"] as? String ?? "?") \(listener["Port"] as? Int ?? 0) -> \(tgNames[target] ?? target)"
        )
      }
    }
    only("LISTENER_ARN", listenerArns)
    inventory["listener"] = listeners.sorted()

    var services: [String] = []
    for arn in clusterArns {
      let listed =
        (try await awsJSON(endpoint, ["ecs", "list-services", "--cluster", arn]))["serviceArns"]
        as? [String] ?? []
      guard !listed.isEmpty else { continue }
      let described = try await awsJSON(
        endpoint, ["ecs", "describe-services", "--cluster", arn, "--services"] + listed)
      for service in list(described, "services") where service["status"] as? String == "ACTIVE" {
        let network =
          ((service["networkConfiguration"] as? [String: Any])?["awsvpcConfiguration"]
            as? [String: Any]) ?? [:]
        var line =
          "\(service["serviceName"] as? String ?? "?") \(last(service["taskDefinition"] as? String ?? "?"))"
        line +=
          " \(service["desiredCount"] as? Int ?? 0) \(service["launchType"] as? String ?? "?")"
        line +=
          " \(subnets(network["subnets"] as? [String] ?? [])), \(group(network["securityGroups"] as? [String] ?? []))"
        line +=
          network["assignPublicIp"] as? String == "DISABLED" ? ", no public IP" : ", public IP"
        // (The emulator keeps neither the deployment configuration nor the grace period: the
        // tests read those from the create-service call.)
        for balancer in service["loadBalancers"] as? [[String: Any]] ?? [] {
          let tg = balancer["targetGroupArn"] as? String ?? "?"
          line +=
            ", \(tgNames[tg] ?? tg) \(balancer["containerName"] as? String ?? "?"):\(balancer["containerPort"] as? Int ?? 0)"
        }
        services.append(line)
      }
    }
    inventory["service"] = services.sorted()

    let lambdas = list(try await functions, "Functions").filter {
      $0["FunctionName"] as? String == function
    }
    only("LAMBDA_ARN", lambdas.compactMap { $0["FunctionArn"] as? String })
    inventory["function"] = lambdas.map {
      let vpc = $0["VpcConfig"] as? [String: Any] ?? [:]
      return
        "\(function) \($0["Runtime"] as? String ?? "?") \($0["Timeout"] as? Int ?? 0) s \($0["MemorySize"] as? Int ?? 0) MB"
        + " \(subnets(vpc["SubnetIds"] as? [String] ?? [])), \(group(vpc["SecurityGroupIds"] as? [String] ?? []))"
        + ", role \(last($0["Role"] as? String ?? "?"))"
    }

    let roles = list(try await iam, "RoleDetailList").filter {
      [executionRole, lambdaRole, taskRole].contains($0["RoleName"] as? String ?? "")
    }
    for role in roles where role["RoleName"] as? String == taskRole {
      found["TASK_ROLE_ARN"] = role["Arn"] as? String
    }
    for role in roles where role["RoleName"] as? String == executionRole {
      found["EXECUTION_ROLE_ARN"] = role["Arn"] as? String
    }
    for role in roles where role["RoleName"] as? String == lambdaRole {
      found["LAMBDA_ROLE_ARN"] = role["Arn"] as? String
    }
    inventory["role"] = roles.map { role in
      let managed = list(role, "AttachedManagedPolicies").compactMap { $0["PolicyName"] as? String }
        .sorted()
      let own = list(role, "RolePolicyList").compactMap { $0["PolicyName"] as? String }.sorted()
      return
        "\(role["RoleName"] as? String ?? "?"): \(managed.joined(separator: " ")) + \(own.joined(separator: " "))"
    }.sorted()

    inventory["log-group"] = list(try await logGroups, "logGroups").map {
      "\($0["logGroupName"] as? String ?? "?") \($0["retentionInDays"] as? Int ?? 0) days"
    }.sorted()
    return (inventory, found)
  }
}
