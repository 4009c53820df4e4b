using Gateway.Routing;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace Gateway.Uplinks.Mqtt;

/// <summary>
/// One MQTTnet connection to the cloud broker. Publishes go straight to the channel adapter with
/// packet identifiers of the link's own (derived from the forwarder's sequence numbers), and
/// their PUBACKs come back on the read loop (<see cref="UplinkChannelAdapter"/>), mapped to a
/// <see cref="PublishResult"/>: no task, lock or thread hop per message.
/// </summary>
internal sealed class MqttCloudLink : ICloudLink, IPublishAcknowledgements
{
    private const int MaxPacketId = ushort.MaxValue;

    private readonly MqttCloudSink _sink;
    private readonly IMqttClient _client;
    private readonly UplinkChannelAdapter _adapter;
    private readonly MqttDownlink _downlink;
    private readonly TimeSpan _keepAlive;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IPublishConfirmations? _confirmations;
    private Task _keepAliveLoop = Task.CompletedTask;

    public MqttCloudLink(MqttCloudSink sink, IMqttClient client, UplinkChannelAdapter adapter, MqttDownlink downlink, ushort receiveMaximum, TimeSpan keepAlive)
    {
        _sink = sink;
        _client = client;
        _adapter = adapter;
        _downlink = downlink;
        _keepAlive = keepAlive;
        MaxUnconfirmed = receiveMaximum > 0 ? receiveMaximum : int.MaxValue;
        client.DisconnectedAsync += OnDisconnectedAsync;
        client.ApplicationMessageReceivedAsync += downlink.OnReceivedAsync;
    }

    public int MaxUnconfirmed { get; }

    public string MaxUnconfirmedSource => "the broker's Receive Maximum";

    public Task<string> Closed => _closed.Task;

    public async Task<bool> StartAsync(CancellationToken cancellationToken)
    {
        using var starting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Token);
        if (!await _downlink.SubscribeAsync(_client, starting.Token))
        {
            return false;
        }

        _keepAliveLoop = KeepAliveAsync(cancellationToken);
        return true;
    }

    public void SetConfirmations(IPublishConfirmations? confirmations)
    {
        Volatile.Write(ref _confirmations, confirmations);
        _adapter.Acknowledgements = confirmations is null ? null : this;
    }

    public Task PublishAsync(long sequence, GatewayMessage message, CancellationToken cancellationToken)
    {
        var mqtt = _sink.ToRemote(message);
        var qos = mqtt.QualityOfServiceLevel;
        MqttPublishPacket packet;
        try
        {
            MqttTopicValidator.ThrowIfInvalid(mqtt.Topic);
            packet = MqttPublishPacketFactory.Create(mqtt);
        }
        catch (MqttProtocolViolationException ex)
        {
            // No broker would take it: dead-lettered like a rejection, never sent.
            Volatile.Read(ref _confirmations)?.TryComplete(sequence, PublishResult.Rejected(FailureKind.Invalid, Reason((int)MqttClientPublishReasonCode.TopicNameInvalid, ex.Message)));
            return Task.CompletedTask;
        }

        if (qos == MqttQualityOfServiceLevel.AtMostOnce)
        {
            // Not confirmed by the broker: done once written.
            var written = _adapter.SendPacketAsync(packet, cancellationToken);
            if (!written.IsCompletedSuccessfully)
            {
                return ConfirmAfterAsync(written, sequence);
            }

            Volatile.Read(ref _confirmations)?.TryComplete(sequence, PublishResult.Confirmed);
            return Task.CompletedTask;
        }

        packet.PacketIdentifier = (ushort)((sequence % MaxPacketId) + 1);
        return _adapter.SendPacketAsync(packet, cancellationToken);
    }

    // On the connection's read loop.
    public bool TryComplete(MqttPubAckPacket acknowledgement)
    {
        if (Volatile.Read(ref _confirmations) is not { } confirmations)
        {
            return false;
        }

        var code = (int)acknowledgement.ReasonCode;
        return code < 0x80
            ? confirmations.TryCompleteWrapped(acknowledgement.PacketIdentifier, MaxPacketId, PublishResult.Confirmed)
            : confirmations.TryCompleteWrapped(acknowledgement.PacketIdentifier, MaxPacketId, PublishResult.Rejected(KindOf(acknowledgement.ReasonCode), Reason(code, acknowledgement.ReasonString)));
    }

    public bool IsLinkLoss(Exception exception) => exception is MqttCommunicationException or ObjectDisposedException;

    public async ValueTask DisposeAsync()
    {
        await _lifetime.CancelAsync();
        await _keepAliveLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _adapter.Acknowledgements = null;
        _client.ApplicationMessageReceivedAsync -= _downlink.OnReceivedAsync;
        _client.DisconnectedAsync -= OnDisconnectedAsync;
        await DisconnectQuietlyAsync();
        _client.Dispose();
        _lifetime.Dispose();
    }

    private static FailureKind KindOf(MqttPubAckReasonCode code) => code switch
    {
        MqttPubAckReasonCode.NotAuthorized => FailureKind.Unauthorized,
        MqttPubAckReasonCode.QuotaExceeded => FailureKind.Throttled,
        MqttPubAckReasonCode.TopicNameInvalid or MqttPubAckReasonCode.PayloadFormatInvalid => FailureKind.Invalid,
        _ => FailureKind.Refused,
    };

    // As the dead-letter header and the log show it: "QuotaExceeded (0x97): text".
    private static string Reason(int code, string? text) =>
        $"{(MqttClientPublishReasonCode)code} (0x{code:x2}){(string.IsNullOrEmpty(text) ? string.Empty : ": " + text)}";

    private async Task ConfirmAfterAsync(Task written, long sequence)
    {
        await written;
        Volatile.Read(ref _confirmations)?.TryComplete(sequence, PublishResult.Confirmed);
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        _closed.TrySetResult(e.Exception?.Message ?? e.Reason.ToString());
        return CancelQuietlyAsync();
    }

    private async Task CancelQuietlyAsync()
    {
        try
        {
            await _lifetime.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: nothing left to stop.
        }
    }

    // A ping every half keep-alive, each allowed half a keep-alive: a link that went silent is
    // found within one keep-alive (the issue's bound is 1.5). Ends the link with the reason.
    private async Task KeepAliveAsync(CancellationToken cancellationToken)
    {
        using var running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Token);
        var interval = _keepAlive / 2;
        while (true)
        {
            await Task.Delay(interval, _sink.Time, running.Token);
            using var ping = CancellationTokenSource.CreateLinkedTokenSource(running.Token);
            ping.CancelAfter(interval);
            try
            {
                await _client.PingAsync(ping.Token);
            }
            catch (OperationCanceledException) when (!running.IsCancellationRequested)
            {
                _closed.TrySetResult($"no PINGRESP within {interval.TotalSeconds:F1} s");
                return;
            }
            catch (MqttCommunicationException ex)
            {
                _closed.TrySetResult(ex.Message);
                return;
            }
        }
    }

    private async Task DisconnectQuietlyAsync()
    {
        if (!_client.IsConnected)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await _client.DisconnectAsync(new MqttClientDisconnectOptions(), timeout.Token);
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
        {
            // The link is gone either way.
        }
    }
}
