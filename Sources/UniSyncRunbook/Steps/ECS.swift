import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 6: the ECS cluster (6.1), the task execution role (6.2), the task definitions (6.3), the
/// Application Load Balancer (6.4) and the services (6.5).
///
/// What the guide leaves out and this step adds:
/// - the log groups the awslogs driver writes to (it does not create them), with a retention;
/// - the secrets of every service (the guide shows only the gateway's), read from the ARNs the
///   secrets and rds steps exported, and the execution role allowed to read them, including the
///   secret RDS keeps the master password in (it is not under `unisync/`);
/// - a health-check grace period for the gateway, and the deployment circuit breaker with rollback;
/// - reruns that change nothing: a task definition is registered only when it differs from the
///   latest active revision (a family the listing of active families leaves out has none), the
///   ALB, target group and listener are looked up before they are created, and an existing
///   service is updated to the new revision, never created again;
/// - an ALB of the configuration's name that this deployment did not make stops the step before
///   anything is added to it or changed on it (`--adopt` takes it over as it is).
package struct ECSStep: Step {
  package let id = "ecs"
  package let section = "6"
  package let title = "ECS cluster, task definitions, load balancer and services"

  package init() {}

  /// `TASK_DEF_API_GATEWAY` for `api-gateway`.
  package static func taskDefinitionExport(_ service: String) -> String {
    "TASK_DEF_" + exportSuffix(service)
  }

  /// `unisync-api-gateway`: the task definition family of a service.
  static func family(_ deployment: Deployment, _ service: String) -> String {
    "\(deployment.ecs.familyPrefix)-\(service)"
  }

  /// `/ecs/unisync-api-gateway`, where the awslogs driver of the service's task definition writes.
  static func logGroup(_ deployment: Deployment, _ service: String) -> String {
    "/ecs/" + family(deployment, service)
  }

  package func actions(for deployment: Deployment) -> [Action] {
    let ecs = deployment.ecs
    var actions: [Action] = []

    // 6.1 Create the ECS cluster. create-cluster returns an existing one as if it made it: it is
    // looked for first, so that a cluster that was there before stays the operator's (destroy
    // keeps it) and a cluster made in this run is known to be new (it has no services yet).
    let findCluster = Command.aws(
      "ecs", "describe-clusters", "--clusters", .text(ecs.cluster),
      "--query", "clusters[?status=='ACTIVE'].clusterArn", "--output", "text")
    var cluster = Action.create(
      "cluster", "create ECS cluster \(ecs.cluster)", export: "CLUSTER_ARN",
      pattern: arnPattern("ecs", "cluster/", name: ecs.cluster),
      command: .aws(
        "ecs", "create-cluster", "--cluster-name", .text(ecs.cluster),
        "--tags", deployment.ecsTagList(name: ecs.cluster, action: "\(id)/cluster"),
        "--query", "cluster.clusterArn", "--output", "text"),
      lookup: findCluster)
    cluster.precheck = .exists(
      findCluster, rule: "cluster \(ecs.cluster) exists", pattern: cluster.capture?.pattern ?? "")
    actions.append(cluster)

    // 6.2 Create the task execution role: pull images, write logs, read the secrets.
    actions += deployment.roleActions(step: id, Self.executionRole(deployment))
    actions += deployment.roleActions(step: id, Self.taskRole(deployment))

    // 6.3 Register the task definitions, each after its log group. One listing of the families
    // that have an active revision spares a describe of each family that has none.
    actions.append(
      Action(
        name: "task-definition-families",
        summary: "list the task definition families \(ecs.familyPrefix)-* with an active revision",
        effect: .read,
        command: .aws(
          "ecs", "list-task-definition-families", "--family-prefix", .text("\(ecs.familyPrefix)-"),
          "--status", "ACTIVE", "--query", "families", "--output", "text")))
    for service in deployment.services {
      actions += taskDefinition(deployment, service)
    }

    // Guide 3.3, which needs a task in the VPC: the databases, before any service starts.
    actions += DatabaseSetup.actions(deployment, step: id)

    // 6.4 Create the Application Load Balancer, its target group and listener.
    actions += loadBalancer(deployment)

    // 6.5 Create the ECS services, after the names they are found by (Support/ServiceDiscovery.swift).
    actions += ServiceDiscovery.actions(deployment, step: id)
    for service in deployment.services {
      actions += self.service(deployment, service)
    }
    return deployment.observing(actions, step: id)
  }

  // MARK: - 6.3 Task definitions

  private func taskDefinition(_ deployment: Deployment, _ service: Deployment.Service) -> [Action] {
    let family = Self.family(deployment, service.name)
    let name = service.name
    let document = TaskDefinitions.document(deployment, service)
    // The log group the awslogs driver writes to (the guide does not create it), with a retention.
    let logGroup = deployment.logGroupActions(
      Self.logGroup(deployment, name), suffix: name, step: id,
      retentionDays: deployment.ecs.logRetentionDays)
    let register = TaskDefinitions.registration(
      deployment, step: id, name: name, family: family, document: document,
      export: Self.taskDefinitionExport(name),
      summary: "register task definition \(family) from \(service.taskDefinition.path)")
    return logGroup + [register]
  }

  // MARK: - 6.5 Services

  private func service(_ deployment: Deployment, _ service: Deployment.Service) -> [Action] {
    let ecs = deployment.ecs
    let name = service.name
    let privateSubnets = deployment.network.subnets.filter { !$0.isPublic }.map {
      Argument.ref($0.export)
    }
    let network =
      #"{"awsvpcConfiguration":{"subnets":"# + jsonArray(privateSubnets)
      + #","securityGroups":["\#(ref: "ECS_SG")"],"assignPublicIp":"DISABLED"}}"#
    var command: [Argument] =
      [
        "ecs", "create-service", "--cluster", .ref("CLUSTER_ARN"), "--service-name", .text(name),
        "--task-definition", .ref(Self.taskDefinitionExport(name)),
        "--desired-count", "\(ecs.desiredCount)", "--launch-type", "FARGATE",
        "--network-configuration", network,
        "--deployment-configuration",
        #"{"deploymentCircuitBreaker":{"enable":true,"rollback":true}}"#,
      ] + ServiceDiscovery.createServiceArguments(deployment, service)
    // No service starts before its database exists (guide 3.3, ``DatabaseSetup``).
    var after = [DatabaseSetup.gate]
    if service.loadBalanced {
      // ECS refuses a target group that no listener uses yet.
      command += [
        "--load-balancers",
        #"[{"targetGroupArn":"\#(ref: "TG_ARN")","containerName":"\#(name)","containerPort":\#(service.port)}]"#,
        "--health-check-grace-period-seconds", "\(ecs.healthCheckGracePeriodSeconds)",
      ]
      after.append("listener-forward")
    }
    command += [
      "--tags", deployment.ecsTagList(name: name, action: "\(id)/service-\(name)"),
      "--query", "service.serviceArn", "--output", "text",
    ]
    let pattern = arnPattern("ecs", "service/([^/]+/)?", name: name)
    return [
      Action(
        name: "service-\(name)",
        summary: "create service \(name) (\(ecs.desiredCount) Fargate tasks in the private subnets"
          + (service.loadBalanced ? ", behind \(ecs.targetGroup))" : ")"),
        effect: .write, command: .aws(command),
        capture: Capture(export: nil, pattern: pattern),
        precheck: .exists(
          .activeECSService(name, fields: "serviceArn"),
          rule: "service \(name) exists in the cluster", pattern: pattern),
        after: after,
        transientErrors: TransientErrors(
          ["Unable to assume the service linked role", "cannot be assumed"], seconds: 120),
        // A cluster made a moment ago has no services.
        settledBy: .nothingToFind(whenCreated: "cluster")),
      // An existing service of this deployment moves to the registered revision (guide 10, step
      // 3); one that existed already (another team's, in a cluster that existed) is left as it is.
      Action(
        name: "service-revision-\(name)", summary: "run \(name) on the registered task definition",
        effect: .write,
        command: .ecsService(
          "update-service", name,
          [
            "--task-definition", .ref(Self.taskDefinitionExport(name)), "--query",
            "service.serviceArn", "--output", "text",
          ]),
        capture: Capture(export: nil, pattern: pattern),
        precheck: Precheck(
          .activeECSService(name, fields: "[serviceArn,taskDefinition]"),
          rule: "service \(name) runs the registered task definition"
        ) { output, values in
          let words = output.split(whereSeparator: \.isWhitespace).map(String.init)
          return words.count == 2 && words[1] == values[Self.taskDefinitionExport(name)]
            ? words[0] : nil
        },
        after: ["service-\(name)"], settledBy: .nothingToDo(whenCreated: "service-\(name)")
      ).configuring("service-\(name)"),
    ].map { action in
      // Its tasks pull the images the ecr step pushes, through the private subnets' route to the
      // NAT gateway: neither passes an id, so the service waits for both steps to finish.
      var action = action
      action.afterSteps = ["network", "ecr"]
      return action
    }
  }
}

// MARK: - Teardown (runbook destroy)

extension ECSStep {
  /// Guide 6 backwards: each service scaled to 0 and deleted; the listener, the load balancer and
  /// the target group; every revision of each task definition family that carries this
  /// deployment's tag (`update` registers more) deregistered; the log groups; the cluster, once its
  /// services are gone; the execution role with its policies.
  package func teardown(for deployment: Deployment) -> [Action] {
    let ecs = deployment.ecs
    var actions: [Action] = []
    let gone = [
      "ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException",
    ]
    for service in deployment.services {
      actions.append(
        Action(
          name: "scale-down-\(service.name)", summary: "scale \(service.name) to 0 tasks",
          effect: .write,
          command: .ecsService(
            "update-service", service.name,
            ["--desired-count", "0", "--query", "service.desiredCount", "--output", "text"]),
          alreadyDoneErrors: Set(gone), deletes: "service-\(service.name)"))
      actions.append(
        Action(
          name: "delete-service-\(service.name)", summary: "delete service \(service.name)",
          effect: .write,
          command: .ecsService(
            "delete-service", service.name,
            ["--force", "--query", "service.status", "--output", "text"]),
          alreadyDoneErrors: Set(gone), after: ["scale-down-\(service.name)"],
          deletes: "service-\(service.name)"))
    }
    let services = deployment.services.map { "delete-service-\($0.name)" }
    let balanced = deployment.services.filter(\.loadBalanced).map { "delete-service-\($0.name)" }
    actions += [
      Action(
        name: "delete-listener", summary: "delete the listener of \(ecs.loadBalancer)",
        effect: .write,
        command: .aws("elbv2", "delete-listener", "--listener-arn", .ref("LISTENER_ARN")),
        alreadyDoneErrors: ["ListenerNotFound"], after: balanced, deletes: "listener"),
      Action(
        name: "delete-load-balancer", summary: "delete ALB \(ecs.loadBalancer)", effect: .write,
        command: .aws("elbv2", "delete-load-balancer", "--load-balancer-arn", .ref("ALB_ARN")),
        alreadyDoneErrors: ["LoadBalancerNotFound"], after: ["delete-listener"] + balanced,
        deletes: "load-balancer"),
      Action(
        name: "delete-target-group", summary: "delete target group \(ecs.targetGroup)",
        effect: .write,
        command: .aws("elbv2", "delete-target-group", "--target-group-arn", .ref("TG_ARN")),
        alreadyDoneErrors: ["TargetGroupNotFound"], after: ["delete-load-balancer"] + balanced,
        transientErrors: dependencyRetry(deployment, ["ResourceInUse"]), deletes: "target-group"),
    ]
    actions += ServiceDiscovery.teardown(deployment, after: services)
    for service in deployment.services {
      actions.append(TaskDefinitions.deregisterRevisions(deployment, service.name, after: services))
      actions.append(
        deployment.logGroupTeardown(
          Self.logGroup(deployment, service.name), suffix: service.name, after: services))
    }
    actions += DatabaseSetup.teardown(deployment, after: services)
    actions.append(
      Action(
        name: "delete-cluster", summary: "delete ECS cluster \(ecs.cluster)", effect: .write,
        command: .aws(
          "ecs", "delete-cluster", "--cluster", .ref("CLUSTER_ARN"), "--query", "cluster.status",
          "--output", "text"),
        alreadyDoneErrors: ["ClusterNotFoundException"],
        // create-cluster returns a cluster that exists already as if it had made it: its tag decides.
        precheck: .notTagged(
          .aws(
            "ecs", "list-tags-for-resource", "--resource-arn", .ref("CLUSTER_ARN"),
            "--query", "tags[?key=='\(OwnershipTag.deployment)'].value | [0]", "--output", "text"),
          deployment: deployment.name),
        after: services,
        // Deleted services drain for a while; the cluster goes once they are inactive.
        transientErrors: TransientErrors(
          [
            "ClusterContainsServicesException", "ClusterContainsTasksException",
            "ClusterContainsContainerInstancesException",
          ],
          seconds: Double(deployment.operations.dependencyRetrySeconds), intervalSeconds: 5),
        deletes: "cluster"))
    actions += deployment.roleTeardown(Self.executionRole(deployment), after: services)
    actions += deployment.roleTeardown(Self.taskRole(deployment), after: services)
    return actions
  }
}
