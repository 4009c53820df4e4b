using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// The MQTT server runs (unhealthy if not), and its retained messages were loaded (degraded if
/// not: it serves, without them, and a restart would not cure it). Whether its listener accepts
/// connections is checked by the host for every listener.
/// </summary>
internal sealed class MqttHealthCheck(MqttAdapter adapter) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            !adapter.Server.IsStarted ? HealthCheckResult.Unhealthy("server not started")
            : adapter.RetainedLoadFailure is { } failure ? HealthCheckResult.Degraded("retained messages not loaded: " + failure)
            : HealthCheckResult.Healthy());
}
