import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 10: deploy an update. `runbook run update --tag TAG [--service NAME]...`
///
/// 1. "Build and push the new image": the ecr step's own build and push, with the given tag
///    (`latest` stays where it is), for the named services (default: all).
/// 2. "Register a new task definition (only the image tag changes)": derived from the service's
///    current one (`describe-task-definition`): the image of the service's container changes,
///    the read-only fields AWS adds are dropped, everything else is kept. It is registered only
///    when no revision of the family has exactly that content already, so the same update twice
///    registers nothing. The field-level difference is printed.
/// 2½. Not in the guide, and only for a service with a `migration` in the configuration: its
///    migration runs as a one-off task of the new revision (``Migration``), one service after the
///    other, before any service is updated; unless each exits 0, none is.
/// 3. "Update the service": the current task definition is recorded in the checkpoint first
///    (`ROLLBACK_TASK_DEF_<SERVICE>`), then `update-service`. The rollout is judged by the tool's
///    own loop over `describe-services` (never `aws ecs wait services-stable`, which gives up
///    silently after 10 minutes and calls a rolled-back deployment stable): every new service
///    event and every change of the deployment is printed; the deployment `update-service`
///    started must end COMPLETED with as many running tasks as desired. FAILED, gone (the
///    circuit breaker rolled it back) or still not done after `ecs.deploymentTimeoutSeconds` is a
///    failure: the service goes back to the recorded task definition, that is waited for too, and
///    the run fails naming the deployment and the reason.
///
/// `runbook run update --rollback [--service NAME]...` does the going back on request. Services
/// update side by side (at most `--jobs` at once), each line prefixed with the service's name;
/// a table of what happened to each ends the run.
package struct UpdateStep: Step {
  package let id = "update"
  package let section = "10"
  package let title = "Deploy an update"
  package var runsByDefault: Bool { false }

  package init() {}

  /// `ROLLBACK_TASK_DEF_API_GATEWAY`: the task definition `api-gateway` ran before the last update.
  package static func rollbackExport(_ service: String) -> String {
    "ROLLBACK_TASK_DEF_" + exportSuffix(service)
  }

  package func usageProblem(for deployment: Deployment) -> String? {
    if deployment.request.rollback {
      return deployment.imageTag == nil
        ? nil : "'update --rollback' goes back to the recorded task definitions: it takes no --tag"
    }
    return deployment.imageTag == nil
      ? "'update' needs --tag TAG (the image tag to build, push and deploy), or --rollback" : nil
  }

  package func actions(for deployment: Deployment) -> [Action] {
    let services = deployment.requestedServices
    let rollout = rolloutAction(deployment, services.map(\.name))
    guard !deployment.request.rollback else { return [rollout] }
    // 1. Build and push the new image (the ecr step's code, with this tag).
    let tag: Argument = .text(deployment.imageTag ?? "<TAG>")
    var actions = [ECRStep.login(deployment)]
    for service in services {
      actions += ECRStep().buildAndPush(deployment, service, tag: tag, withLatest: false)
    }
    // All of it runs again on every update, whatever an earlier one recorded.
    actions = actions.map {
      var action = $0
      action.repeatable = true
      return action
    }
    var after = rollout
    after.after = actions.map(\.name)
    return actions + [after]
  }

  /// 2 and 3 (or the rollback) for every service, as one procedure.
  private func rolloutAction(_ deployment: Deployment, _ services: [String]) -> Action {
    let rollback = deployment.request.rollback
    let service = "<SERVICE>"
    let describe = Rollout.describeService(service)
    let update = Rollout.updateService(
      service, to: .ref(rollback ? "ROLLBACK_TASK_DEF_<SERVICE>" : "NEW_TASK_DEFINITION"))
    var outline: [Procedure.Line] = [
      .note("for each of \(services.joined(separator: ", ")) (at most --jobs at once):"),
      .command(describe),
    ]
    if !rollback {
      let image = Argument(
        ECRStep.image(deployment, service).fragments + [
          .text(":" + (deployment.imageTag ?? "<TAG>"))
        ])
      outline += [
        .command(Rollout.describeTaskDefinition(.ref("CURRENT_TASK_DEFINITION"), tags: true)),
        .note(
          "the same task definition with the image of container \(service) set to \(image), read-only fields dropped"
        ),
        .command(
          Rollout.describeTaskDefinition(.text(ECSStep.family(deployment, service)), tags: false)),
        .note("when no revision has exactly that content:"),
        .command(
          Rollout.register(
            .text("{...}"), tags: deployment.ecsTagList(name: "<FAMILY>", action: "\(id)/rollout"))),
      ]
      outline += Migration.outline(deployment, services)
      outline.append(
        .note(
          "record ROLLBACK_TASK_DEF_<SERVICE>=<CURRENT_TASK_DEFINITION> in the checkpoint, then:"))
    }
    outline += [
      .command(update),
      .note(
        "then every \(deployment.operations.deploymentPollSeconds) s, until that deployment is COMPLETED with running = desired (FAILED, gone, or after \(deployment.ecs.deploymentTimeoutSeconds) s: a failure):"
      ),
      .command(describe),
    ]
    if !rollback {
      outline.append(
        .note("on a failure, back to the recorded task definition, waited for the same way:"))
      outline.append(
        .command(Rollout.updateService(service, to: .ref("ROLLBACK_TASK_DEF_<SERVICE>"))))
    }
    let procedure = Procedure(
      rollback
        ? "roll back \(services.joined(separator: ", "))"
        : "roll out \(services.joined(separator: ", "))",
      outline: outline,
      requires: ["CLUSTER_ARN"]
        + (rollback || Migration.services(deployment, services).isEmpty
          ? [] : ["ECS_SG"] + deployment.network.subnets.filter { !$0.isPublic }.map(\.export))
    ) { context in
      try await Rollout.run(context, deployment: deployment, services: services)
    }
    return Action(
      name: rollback ? "rollback" : "rollout",
      summary: rollback
        ? "put \(services.joined(separator: ", ")) back on the task definitions recorded before the last update"
        : "register task definitions with the new image and roll them out, judged, rolled back on failure",
      // Safe to run again as it is: it reads the service first, registers only what is missing,
      // and waits for a rollout that is going on.
      effect: .write, command: update, idempotent: true, procedure: procedure, repeatable: true)
  }
}
