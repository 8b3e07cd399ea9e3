import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess

/// How the services find each other (what guide 6 forgot: the gateway's task definition calls
/// `http://unisync-user-service:8081` and the Lambda function the user service, and on Fargate
/// nothing makes those names resolve). See "Service discovery" in docs/architecture.md.
///
/// - A Cloud Map private DNS namespace in the VPC (`<deployment>.internal`), made by the ecs
///   step before the services. Creating it is asynchronous: the call returns an operation id,
///   and the namespace is usable once `get-operation` says `SUCCESS`.
/// - Per ECS service, a Cloud Map service named after the guide's host name
///   (`unisync-user-service`) with an `A` record per task, which ECS keeps up to date
///   (`--service-registries`): `unisync-user-service.unisync.internal` resolves anywhere in the
///   VPC, which is how the Lambda function (outside ECS) reaches the user service.
/// - Per ECS service, Service Connect on the same namespace with a client alias that is the
///   guide's short name and port (`unisync-user-service:8081`): the gateway's URLs work
///   unchanged inside the ECS tasks. Service Connect needs a named port mapping (the templates
///   name it after the service).
enum ServiceDiscovery {
  /// `unisync.internal`: the namespace (a private hosted zone), named after the deployment so
  /// that two deployments in one account never take each other's. `.internal` is reserved for
  /// private use (ICANN, 2024), so it never shadows a public name.
  static func namespace(_ deployment: Deployment) -> String {
    "\(deployment.name).internal"
  }

  /// `unisync-user-service`: the guide's host name of a service, its task definition family.
  static func hostName(_ deployment: Deployment, _ service: String) -> String {
    ECSStep.family(deployment, service)
  }

  /// `unisync-user-service.unisync.internal`: the name that resolves anywhere in the VPC.
  static func fullName(_ deployment: Deployment, _ service: String) -> String {
    hostName(deployment, service) + "." + namespace(deployment)
  }

  /// `DISCOVERY_SERVICE_USER_SERVICE`: the id of the Cloud Map service of an ECS service.
  static func serviceIDExport(_ service: String) -> String {
    "DISCOVERY_SERVICE_" + exportSuffix(service)
  }

  /// `DISCOVERY_ARN_USER_SERVICE`: its ARN, what `--service-registries` names.
  static func serviceARNExport(_ service: String) -> String {
    "DISCOVERY_ARN_" + exportSuffix(service)
  }

  static let namespacePattern = #"^ns-[a-z0-9]+$"#
  static let servicePattern = #"^srv-[a-z0-9]+$"#

  /// How long a namespace operation may take before the step gives up (AWS gives no figure; a
  /// private namespace makes a Route 53 hosted zone and associates it with the VPC).
  static let operationTimeoutSeconds: Double = 600

  // MARK: - Creates (in the ecs step, before the services)

  /// The namespace, its ARN, and one Cloud Map service per ECS service.
  static func actions(_ deployment: Deployment, step: String) -> [Action] {
    var actions = namespaceActions(deployment, step: step)
    actions.append(
      .derived(
        "discovery-namespace-arn", "the ARN of the namespace \(namespace(deployment))",
        export: "NAMESPACE_ARN",
        pattern: #"^arn:aws[a-z-]*:servicediscovery:[a-z0-9-]+:[0-9]{12}:namespace/ns-[a-z0-9]+$"#,
        value:
          "arn:aws:servicediscovery:\(ref: ContextValue.region):\(ref: ContextValue.account):namespace/\(ref: "NAMESPACE_ID")",
        after: ["discovery-namespace-created"]))
    for service in deployment.services {
      actions += cloudMapService(deployment, service.name, step: step)
    }
    return actions
  }

  /// A Cloud Map service with one `A` record per task (MULTIVALUE: every healthy task answers),
  /// its health reported by ECS (custom health check), tagged like everything the tool makes.
  /// "Creating an AWS Cloud Map service": https://docs.aws.amazon.com/cloud-map/latest/dg/creating-services.html
  private static func cloudMapService(_ deployment: Deployment, _ service: String, step: String)
    -> [Action]
  {
    let host = hostName(deployment, service)
    let action = "\(step)/discovery-service-\(service)"
    // ListServices filters by namespace; the name picks the service out of it.
    let find = Command.aws(
      "servicediscovery", "list-services", "--filters",
      #"[{"Name":"NAMESPACE_ID","Values":["\#(ref: "NAMESPACE_ID")"],"Condition":"EQ"}]"#,
      "--query", .text("Services[?Name=='\(host)'].Id"), "--output", "text")
    var create = Action.create(
      "discovery-service-\(service)", "create Cloud Map service \(host) in the namespace",
      export: serviceIDExport(service), pattern: servicePattern,
      command: .aws(
        "servicediscovery", "create-service", "--name", .text(host), "--namespace-id",
        .ref("NAMESPACE_ID"),
        "--dns-config", #"{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"A","TTL":10}]}"#,
        "--health-check-custom-config", #"{"FailureThreshold":1}"#,
        "--tags", deployment.tagList(name: host, action: action),
        "--query", "Service.Id", "--output", "text"),
      lookup: find)
    // A rerun that forgot the step finds it (Cloud Map refuses a second name in a namespace); a
    // namespace made in this run has no services.
    create.precheck = .exists(
      find, rule: "the Cloud Map service \(host) exists", pattern: servicePattern)
    create.settledBy = .nothingToFind(whenCreated: "discovery-namespace")
    return [
      create,
      .derived(
        "discovery-arn-\(service)", "the ARN of the Cloud Map service \(host)",
        export: serviceARNExport(service),
        pattern: #"^arn:aws[a-z-]*:servicediscovery:[a-z0-9-]+:[0-9]{12}:service/srv-[a-z0-9]+$"#,
        value:
          "arn:aws:servicediscovery:\(ref: ContextValue.region):\(ref: ContextValue.account):service/\(ref: serviceIDExport(service))",
        after: ["discovery-service-\(service)"]),
    ]
  }

  /// What `create-service` adds: the registry (the `A` records) and Service Connect (the guide's
  /// short name and port as a client alias, for the other ECS services).
  /// "Service Connect": https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect.html,
  /// "ServiceConnectClientAlias": https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceConnectClientAlias.html
  static func createServiceArguments(_ deployment: Deployment, _ service: Deployment.Service)
    -> [Argument]
  {
    let host = jsonString(hostName(deployment, service.name))
    let name = jsonString(service.name)
    return [
      "--service-registries", #"[{"registryArn":"\#(ref: serviceARNExport(service.name))"}]"#,
      "--service-connect-configuration",
      #"{"enabled":true,"namespace":"\#(ref: "NAMESPACE_ARN")","services":[{"portName":"#
        + .text(name + #","discoveryName":"# + name)
        + .text(#","clientAliases":[{"port":\#(service.port),"dnsName":"# + host + "}]}]}"),
    ]
  }

  /// The Lambda function's environment with each URL naming a service by its guide host name
  /// (`http://unisync-user-service:8081`) given the full name (`…unisync-user-service.unisync.internal:8081`):
  /// the function is not in the Service Connect mesh, so only the DNS name resolves for it.
  static func lambdaEnvironment(_ deployment: Deployment) -> [String: String] {
    let hosts = deployment.services.map { ($0.name, hostName(deployment, $0.name)) }
    return deployment.lambda.environment.mapValues { value in
      guard var url = URLComponents(string: value), let host = url.host,
        let service = hosts.first(where: { $0.1 == host })
      else { return value }
      url.host = fullName(deployment, service.0)
      return url.string ?? value
    }
  }

  // MARK: - Teardown (after the ECS services are deleted)

  /// Each Cloud Map service once its ECS service is deleted (ECS deregisters the tasks' records
  /// as they stop: until then Cloud Map answers `ResourceInUse`), then the namespace, waited for.
  static func teardown(_ deployment: Deployment, after services: [String]) -> [Action] {
    var actions: [Action] = []
    for service in deployment.services {
      actions.append(
        Action(
          name: "delete-discovery-service-\(service.name)",
          summary: "delete Cloud Map service \(hostName(deployment, service.name))",
          effect: .write,
          command: .aws(
            "servicediscovery", "delete-service", "--id", .ref(serviceIDExport(service.name))),
          alreadyDoneErrors: ["ServiceNotFound"],
          after: services,
          transientErrors: dependencyRetry(deployment, ["ResourceInUse"]),
          deletes: "discovery-service-\(service.name)"))
    }
    actions.append(deleteNamespace(deployment, after: actions.map(\.name) + services))
    return actions
  }
}
