using System.Collections.Concurrent;
using MQTTnet.Server;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Back-pressure from MQTT subscribers to the delivery pump, in the spirit of RabbitMQ's credit
/// flow. MQTTnet queues outgoing packets per session without bound (up to its drop-oldest
/// limit), so a subscriber slower than its publishers used to lose QoS 0 messages while the
/// gateway burned CPU taking them in. Now the pump waits while a connected subscriber has more
/// than <see cref="PendingLimit"/> packets queued and is still sending; the wait fills the
/// adapter's queue, whose flow limit makes publishers wait in turn (TCP back-pressure for QoS 0,
/// later PUBACKs for QoS 1). A subscriber that has sent nothing for <see cref="StallTime"/> is
/// stalled: the pump does not wait for it, and MQTTnet's per-client limit applies to it alone.
/// </summary>
internal sealed class SubscriberFlow
{
    public const int PendingLimit = 2048;
    public static readonly TimeSpan StallTime = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Client> _clients = new(StringComparer.Ordinal);

    public int ConnectedClients => _clients.Count;

    public Task OnConnectedAsync(ClientConnectedEventArgs e)
    {
        var client = new Client();
        _clients[e.ClientId] = client;
        e.SessionItems[typeof(SubscriberFlow)] = client;
        return Task.CompletedTask;
    }

    public Task OnDisconnectedAsync(ClientDisconnectedEventArgs e)
    {
        if (e.DisconnectType != MqttClientDisconnectType.Takeover && _clients.TryRemove(e.ClientId, out var client))
        {
            client.Release();
        }

        return Task.CompletedTask;
    }

    // Runs inside the pump's injection, once per receiving session.
    public Task OnEnqueueAsync(InterceptingClientApplicationMessageEnqueueEventArgs e)
    {
        if (!_clients.TryGetValue(e.ReceiverClientId, out var client))
        {
            return Task.CompletedTask; // offline persistent session: MQTTnet's own limit applies
        }

        return client.EnqueuedAsync();
    }

    /// <summary>
    /// MQTTnet dropped the oldest message of a session queue over its limit: it will never be
    /// sent, so it is no longer pending (or the count would only grow, and every later message
    /// would wait for sends that cannot bring it down).
    /// </summary>
    public Task OnDroppedAsync(QueueMessageOverwrittenEventArgs e)
    {
        if (_clients.TryGetValue(e.ReceiverClientId, out var client))
        {
            client.Dropped();
        }

        return Task.CompletedTask;
    }

    /// <summary>MQTTnet has written a PUBLISH to a subscriber.</summary>
    public static void OnPublishSent(InterceptingPacketEventArgs e)
    {
        if (e.SessionItems?[typeof(SubscriberFlow)] is Client client)
        {
            client.Sent();
        }
    }

    private sealed class Client
    {
        private readonly Lock _sync = new();
        private int _pending;
        private long _lastSent = Environment.TickCount64;
        private TaskCompletionSource? _waiter;

        public Task EnqueuedAsync()
        {
            lock (_sync)
            {
                _pending++;
                if (_pending <= PendingLimit || Environment.TickCount64 - _lastSent > StallTime.TotalMilliseconds)
                {
                    return Task.CompletedTask;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return WaitAtMostStallTimeAsync(_waiter.Task);
            }
        }

        public void Sent() => Release(sent: true);

        public void Dropped() => Release(sent: false);

        // Bounded: if the client stalls while we wait, carry on without it. Running out of time
        // is not a failure: thrown here, it would fail the whole injection (the message lost
        // for every subscriber after this one) or the SUBSCRIBE that enqueued retained messages.
        private static async Task WaitAtMostStallTimeAsync(Task released) =>
            await released.WaitAsync(StallTime).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

        private void Release(bool sent)
        {
            lock (_sync)
            {
                _pending = Math.Max(0, _pending - 1);
                if (sent)
                {
                    _lastSent = Environment.TickCount64;
                }

                if (_waiter is not null && _pending <= PendingLimit / 2)
                {
                    _waiter.TrySetResult();
                    _waiter = null;
                }
            }
        }

        public void Release()
        {
            lock (_sync)
            {
                _waiter?.TrySetResult();
                _waiter = null;
            }
        }
    }
}
