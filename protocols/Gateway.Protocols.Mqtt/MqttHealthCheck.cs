using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Protocols.Mqtt;

/// <summary>The MQTT server runs; whether its listener accepts connections is checked by the host for every listener.</summary>
internal sealed class MqttHealthCheck(MqttAdapter adapter) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(adapter.Server.IsStarted ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("server not started"));
}
