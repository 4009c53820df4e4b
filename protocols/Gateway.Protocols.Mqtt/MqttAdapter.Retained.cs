using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Logging;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Gateway.Protocols.Mqtt;

// Retained messages. MQTTnet holds every retained message in memory; the store keeps them on
// disk. A retained message is written to the store first and only then becomes MQTTnet's, so one
// the store refused is never served; publishes to the same topic take turns (one of a set of
// gates picked by the topic), so the store and MQTTnet end with the same message. The budget
// (Mqtt:MaxRetainedMessages, Mqtt:MaxRetainedBytes) bounds that memory: over it a retained
// publish is refused (MQTT 5: PUBACK 0x97), and at start messages over it stay on disk unloaded.
// Loading streams from the store, a batch at a time. A load that fails is logged as critical
// and reported by the health check until the next start: never silent.
public sealed partial class MqttAdapter
{
    private const int RetainedGates = 64;

    private readonly SemaphoreSlim[] _retainedGates = CreateGates();

    /// <summary>The retained messages held, against their limits.</summary>
    internal RetainedBudget RetainedBudget { get; private set; } = new(long.MaxValue, long.MaxValue);

    /// <summary>Why loading the retained messages at start failed; null when it did not.</summary>
    public string? RetainedLoadFailure { get; private set; }

    /// <summary>
    /// Makes <paramref name="message"/> the retained message of the MQTT topic (an empty body
    /// clears it), as a retained publish by an MQTT client does: kept even when nobody is
    /// subscribed right now, and on disk when this returns, so the publisher may be acknowledged.
    /// Throws <see cref="RetainedLimitException"/> when the retained limits leave no room for it.
    /// </summary>
    public async Task RetainAsync(string topic, GatewayMessage message, CancellationToken cancellationToken)
    {
        var refusal = await TryRetainAsync(topic, message, cancellationToken);
        if (refusal != RetainedRefusal.None)
        {
            throw new RetainedLimitException($"retained message for '{topic}' refused: {Describe(refusal)}");
        }
    }

    private async Task<RetainedRefusal> TryRetainAsync(string topic, GatewayMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var gate = _retainedGates[(StringComparer.Ordinal.GetHashCode(topic) & int.MaxValue) % RetainedGates];
        await gate.WaitAsync(cancellationToken);
        try
        {
            var clearing = message.Body.IsEmpty;
            RetainedBudget.Reservation reservation = default;
            if (!clearing)
            {
                var refusal = RetainedBudget.TryReserve(topic, RetainedBudget.SizeOf(topic, message.Body.Length), out reservation);
                if (refusal != RetainedRefusal.None)
                {
                    return refusal;
                }
            }

            try
            {
                if (_retainedStore is not null)
                {
                    // Not cancelled once submitted: the store and MQTTnet must agree.
                    await _retainedStore.SetRetainedAsync(topic, clearing ? null : message, CancellationToken.None);
                }
            }
            catch
            {
                if (!clearing)
                {
                    RetainedBudget.Undo(reservation);
                }

                throw;
            }

            if (clearing)
            {
                RetainedBudget.Remove(topic);
            }

            // The wills of clients the stop disconnects arrive after MQTTnet has stopped taking
            // retained messages (it throws); the store already keeps them for the next start.
            if (Server.IsStarted)
            {
                await Server.UpdateRetainedMessageAsync(MqttMessageMapper.ToMqtt(message));
            }

            return RetainedRefusal.None;
        }
        finally
        {
            gate.Release();
        }
    }

    // The retained branch of the publish interceptor: false when the publish was refused (and
    // answered) here.
    private async Task<bool> RetainPublishAsync(InterceptingPublishEventArgs e, GatewayMessage message)
    {
        var topic = e.ApplicationMessage.Topic;
        var refusal = await TryRetainAsync(topic, message, e.CancellationToken);
        if (refusal == RetainedRefusal.None)
        {
            return true;
        }

        if (RetainedBudget.StartsRefusing())
        {
            MqttLog.RetainedLimitReached(_logger, Shorten(topic), e.ClientId, Describe(refusal)); // then each one at debug level
        }
        else if (_logger.IsEnabled(LogLevel.Debug))
        {
            var shown = Shorten(topic);
            var reason = Describe(refusal);
            MqttLog.RetainedRefused(_logger, shown, e.ClientId, reason);
        }

        Refuse(e, MqttPubAckReasonCode.QuotaExceeded);
        return false;
    }

    private static string Shorten(string topic) => topic.Length > 256 ? topic[..256] + "…" : topic;

    private string Describe(RetainedRefusal refusal) => refusal switch
    {
        RetainedRefusal.TooManyMessages => $"Mqtt:MaxRetainedMessages ({RetainedBudget.MaxMessages}) reached",
        _ => $"Mqtt:MaxRetainedBytes ({RetainedBudget.MaxBytes}) reached",
    };

    private async Task OnLoadingRetainedMessagesAsync(LoadingRetainedMessagesEventArgs e)
    {
        RetainedBudget.Clear();
        if (_retainedStore is null)
        {
            return;
        }

        long notLoaded = 0;
        try
        {
            await foreach (var (topic, message) in _retainedStore.ReadRetainedAsync(_stopping.Token))
            {
                if (RetainedBudget.TryReserve(topic, RetainedBudget.SizeOf(topic, message.Body.Length), out _) != RetainedRefusal.None)
                {
                    notLoaded++; // stays on disk: a larger limit loads it at the next start
                    continue;
                }

                e.LoadedRetainedMessages.Add(MqttMessageMapper.ToMqtt(message));
            }
        }
#pragma warning disable CA1031 // MQTTnet would only log it at its own level; this must be loud and visible.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            RetainedLoadFailure = $"{e.LoadedRetainedMessages.Count} retained messages loaded, then loading failed: {ex.GetType().Name}: {ex.Message}";
            MqttLog.RetainedLoadFailed(_logger, e.LoadedRetainedMessages.Count, ex);
            return;
        }

        if (notLoaded > 0)
        {
            MqttLog.RetainedOverLimit(_logger, notLoaded, RetainedBudget.MaxMessages, RetainedBudget.MaxBytes);
        }

        MqttLog.RetainedLoaded(_logger, e.LoadedRetainedMessages.Count);
    }

    private async Task OnRetainedMessagesClearedAsync(EventArgs e)
    {
        RetainedBudget.Clear();
        if (_retainedStore is not null)
        {
            await _retainedStore.ClearRetainedAsync(CancellationToken.None);
        }
    }

    private static SemaphoreSlim[] CreateGates()
    {
        var gates = new SemaphoreSlim[RetainedGates];
        for (var i = 0; i < gates.Length; i++)
        {
            gates[i] = new SemaphoreSlim(1, 1);
        }

        return gates;
    }
}

/// <summary>A retained message was refused: the retained limits leave no room for it.</summary>
public sealed class RetainedLimitException(string message) : Exception(message);
