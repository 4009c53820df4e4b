using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.AspNetCore;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// The connection handler Kestrel runs for every MQTT connection (TCP and WebSocket): enforces
/// the packet size limit and the CONNECT timeout, then hands the connection to MQTTnet.
/// </summary>
internal sealed class GatewayMqttConnectionHandler(
    MqttConnectionHandler mqttnet,
    IOptions<MqttOptions> options,
    ILogger<GatewayMqttConnectionHandler> logger,
    MqttAdapter adapter) : ConnectionHandler
{
    private readonly MqttOptions _options = options.Value;
    private readonly ILogger _logger = logger;
    private readonly MqttCounters _counters = adapter.Counters;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var guard = new MqttPacketGuard(connection.Transport, _options.MaxPacketSize);
        using var connectTimer = new CancellationTokenSource(_options.ConnectTimeout);
        await using var registration = connectTimer.Token.UnsafeRegister(
            static state =>
            {
                var (self, guard, connection) = ((GatewayMqttConnectionHandler, MqttPacketGuard, ConnectionContext))state!;
                if (!guard.ConnectReceived)
                {
                    MqttLog.ConnectTimeout(self._logger, connection.ConnectionId, connection.RemoteEndPoint, self._options.ConnectTimeout);
                    connection.Abort(new ConnectionAbortedException("No CONNECT packet in time"));
                }
            },
            (this, guard, connection));

        try
        {
            await mqttnet.OnConnectedAsync(new GuardedConnectionContext(connection, guard));
        }
        catch (SynchronizationLockException ex) when (ex.StackTrace?.Contains("MqttClientSessionsManager.DeleteSessionAsync", StringComparison.Ordinal) == true)
        {
            // MQTTnet 5.2 disposes a deleted clean session's subscription lock last, after the
            // session is gone and its event has run; a message being fanned out at that moment
            // still holds the lock, and the disposal throws. Nothing is left undone, and nothing
            // is lost: the session no longer exists. Not an error of this connection.
            MqttLog.SessionDisposalRaced(_logger, connection.ConnectionId);
        }
        finally
        {
            // MQTTnet returns without waiting for its send loop: let a packet it is still writing
            // finish before anything else writes to or completes the transport.
            await guard.Output.CloseAsync();
            await RefuseIfViolatedAsync(connection, guard);
        }
    }

    private async Task RefuseIfViolatedAsync(ConnectionContext connection, MqttPacketGuard guard)
    {
        if (guard.Violation == GuardViolation.None)
        {
            return;
        }

        var remote = connection.RemoteEndPoint;
        _counters.OnPacketRefused(guard.Violation);
        switch (guard.Violation)
        {
            case GuardViolation.TooLarge:
                MqttLog.PacketTooLarge(_logger, connection.ConnectionId, remote, guard.ViolatingLength, _options.MaxPacketSize);
                break;
            case GuardViolation.MalformedLength:
                MqttLog.MalformedLength(_logger, connection.ConnectionId, remote);
                break;
            default:
                var refusal = guard.RefusalPacket();
                MqttLog.PacketRefused(
                    _logger,
                    connection.ConnectionId,
                    remote,
                    guard.ViolatingPacketType ?? "packet",
                    guard.ViolationDetail ?? "an invalid topic",
                    refusal is null ? "MQTT 3.1/3.1.1: no acknowledgement" : $"reason 0x{refusal[^2]:X2}");
                break;
        }

        if (guard.RefusalPacket() is { } packet)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await guard.RawOutput.WriteAsync(packet, timeout.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException or ConnectionResetException)
            {
                // The peer is gone already; nothing more to tell it.
            }
        }

        await guard.RawOutput.CompleteAsync();
    }
}
