import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess

/// Verify's look at service discovery: is each service's name registered where its callers look
/// it up? The Lambda function (and anything else in the VPC) resolves
/// `unisync-user-service.unisync.internal`, whose `A` records are the instances ECS registers in
/// the service's Cloud Map service for its tasks; `list-instances` lists exactly those.
/// (`discover-instances` is the data-plane call, on a `data-` host: an endpoint override such as
/// a local emulator's does not reach it with aws CLI v1.)
/// "ListInstances": https://docs.aws.amazon.com/cloud-map/latest/api/API_ListInstances.html
extension Verification {
  /// `list-instances` of one service's Cloud Map service: its instances' IPv4 addresses.
  static func listInstances(_ service: String) -> Command {
    .aws(
      "servicediscovery", "list-instances", "--service-id",
      .ref(ServiceDiscovery.serviceIDExport(service)), "--query",
      "Instances[].Attributes.AWS_INSTANCE_IPV4", "--output", "text")
  }

  /// One line per service: its full name and the addresses it resolves to; a service whose name
  /// resolves to nothing is a problem (its callers cannot reach it).
  func discovery(verbose: Bool) async throws {
    let context = self.context
    let known = services.filter {
      context.values[ServiceDiscovery.serviceIDExport($0)] != nil
    }
    for service in services where !known.contains(service) {
      problems.append(
        "the name \(ServiceDiscovery.fullName(deployment, service)) is registered nowhere (the ecs step has not made its Cloud Map service)"
      )
    }
    let answers = await known.concurrentMap(limit: context.jobs) {
      service -> (String, Result<ProcessOutput, Error>) in
      do {
        return (service, .success(try await context.run(Self.listInstances(service))))
      } catch { return (service, .failure(error)) }
    }
    for (service, answer) in answers {
      let name = ServiceDiscovery.fullName(deployment, service)
      let result = try answer.get()
      guard result.succeeded else {
        let code = awsErrorCode(in: result.stderrText) ?? "an error"
        problems.append("the name \(name) is registered nowhere (Cloud Map answers \(code))")
        continue
      }
      let addresses = result.stdoutText.split(whereSeparator: \.isWhitespace).filter {
        $0 != "None"
      }
      if addresses.isEmpty {
        problems.append("the name \(name) resolves to no task (nothing registered in Cloud Map)")
      } else if verbose {
        say(
          "name \(name): \(addresses.count) task(s) registered (\(addresses.joined(separator: " ")))"
        )
      }
    }
  }
}
