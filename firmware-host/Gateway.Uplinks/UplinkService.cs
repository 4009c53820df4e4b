using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Gateway.Mqtt;
using Gateway.Routing;
using Gateway.Uplinks.Mqtt;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gateway.Uplinks;

/// <summary>Runs every configured uplink until the host stops.</summary>
internal sealed class UplinkService(
    IOptions<UplinksOptions> options,
    IMessageRouter router,
    GatewayStatus status,
    ILoggerFactory loggers,
    IMeterFactory meters,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    IRetainedMessageSink? retained = null) : BackgroundService
{
    private readonly List<CloudForwarder> _uplinks = [];
    private UplinkMetrics? _metrics;

    public IReadOnlyList<CloudForwarder> Uplinks => _uplinks;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Queues and bindings exist before any listener takes a publish.
        foreach (var (name, uplink) in options.Value.Links)
        {
            var downlink = new DownlinkCounters();
            var sink = CreateSink(name, uplink, downlink);
            _uplinks.Add(new CloudForwarder(name, uplink, sink, downlink, router, status, loggers, time));
        }

        _metrics = new UplinkMetrics(meters, this);
        return base.StartAsync(cancellationToken);
    }

    // The protocol half of each uplink; the forwarder is the same for all (UplinksOptionsValidator
    // accepts only the protocols named here).
    [SuppressMessage("Performance", "CA1859:Use concrete types when possible for improved performance", Justification = "The seam: one sink per protocol, AMQP next.")]
    private ICloudSink CreateSink(string name, UplinkOptions uplink, DownlinkCounters downlink) => uplink.Protocol.ToUpperInvariant() switch
    {
        "MQTT" => new MqttCloudSink(name, uplink, router, downlink, loggers, time, retained),
        _ => throw new InvalidOperationException($"Uplinks:{name}:Protocol '{uplink.Protocol}' is not supported"),
    };

    public override void Dispose()
    {
        _metrics?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Connect only once every listener is bound: a gateway that fails to start (its port is
        // taken, say by another instance) never takes over the cloud session of the one running.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (!started.Task.IsCompleted)
        {
            return; // stopped before it ever started
        }

        await Task.WhenAll(_uplinks.Select(u => Task.Run(() => u.RunAsync(stoppingToken), CancellationToken.None)));
    }
}
