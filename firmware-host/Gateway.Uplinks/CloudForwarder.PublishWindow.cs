using System.Threading.Channels;
using Gateway.Routing;

namespace Gateway.Uplinks;

internal sealed partial class CloudForwarder
{
    /// <summary>
    /// A session's publishes in flight: slots in send order, numbered by sequence, and the
    /// broker's answers taken straight from the link (on MQTT, off the connection's read loop:
    /// <see cref="Mqtt.UplinkChannelAdapter"/>). No task, timer or dispatcher entry per message:
    /// an answer marks its slot, the confirmed run at the head leaves the queue in one
    /// settlement, and the room it frees is filled from the consumer on the same thread.
    /// </summary>
    /// <remarks>
    /// One thread at a time "drives" (confirms the head, sends into free room); whoever finds the
    /// role taken leaves a request that the driver picks up before it lets go. The driver hands
    /// the role to a continuation when it must wait (a send held back by a full socket, the drain
    /// rate limit, a dead-letter publish), so sends stay in order and nothing blocks the read loop.
    /// </remarks>
    private sealed partial class PublishWindow : IPublishConfirmations
    {
        private readonly CloudForwarder _forwarder;
        private readonly ICloudLink _link;
        private readonly QueueConsumer _consumer;
        private readonly RateLimiter? _limiter;
        private readonly CancellationToken _cancellation;
        private readonly Slot[] _slots;
        private readonly Lock _lock = new();
        private readonly TaskCompletionSource<SessionEnd> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Channel<bool> _starved = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

        // Sequence numbers: _head is the oldest unconfirmed, _tail the next to send. Both move
        // only in the driver, under _lock so the link's answers see them consistently.
        private long _head;
        private long _tail;
        private Delivery? _held; // read, waiting for the rate limit
        private int _requested;
        private int _driving;
        private volatile bool _stopSending;
        private Task _continuation = Task.CompletedTask;

        public PublishWindow(CloudForwarder forwarder, ICloudLink link, QueueConsumer consumer, int window, CancellationToken cancellation)
        {
            _forwarder = forwarder;
            _link = link;
            _consumer = consumer;
            _cancellation = cancellation;
            _slots = new Slot[window];
            _limiter = forwarder._options.DrainRate > 0 ? new RateLimiter(forwarder._options.DrainRate, forwarder._time) : null;
            _starved.Writer.TryWrite(true); // nothing read yet: the pump starts by waiting for messages
        }

        private enum SlotState : byte
        {
            Free,
            Sent,
            Done,
        }

        /// <summary>
        /// Completes when the session's sending is over: with an exception when a send failed,
        /// with <see cref="SessionEnd.Lost"/> once <see cref="StopSending"/> was called and
        /// everything sent is confirmed.
        /// </summary>
        public Task<SessionEnd> Completion => _completion.Task;

        /// <summary>Waits until the window ran out of messages to send (the pump then waits for the queue).</summary>
        public ValueTask<bool> WaitStarvedAsync(CancellationToken cancellationToken) => _starved.Reader.ReadAsync(cancellationToken);

        /// <summary>Sends nothing more; <see cref="Completion"/> completes once what is in flight is confirmed.</summary>
        public void StopSending()
        {
            _stopSending = true;
            Drive();
        }

        public void Drive()
        {
            Interlocked.Exchange(ref _requested, 1);
            Run();
        }

        /// <summary>Takes the driver role for good: no confirmation or send runs after this returns.</summary>
        public async Task CloseAsync()
        {
            _stopSending = true;
            while (Interlocked.CompareExchange(ref _driving, 1, 0) != 0)
            {
                await Volatile.Read(ref _continuation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding);
            }

            _completion.TrySetResult(SessionEnd.Lost);
        }

        private void Run()
        {
            while (Interlocked.CompareExchange(ref _driving, 1, 0) == 0)
            {
                while (Interlocked.Exchange(ref _requested, 0) == 1)
                {
                    Task? wait;
                    try
                    {
                        wait = StepAsync();
                    }
#pragma warning disable CA1031 // The session ends with it; everything unconfirmed is requeued.
                    catch (Exception ex)
#pragma warning restore CA1031
                    {
                        Fail(ex);
                        wait = null;
                    }

                    if (wait is not null)
                    {
                        Volatile.Write(ref _continuation, ResumeAfterAsync(wait)); // keeps the role
                        return;
                    }
                }

                Interlocked.Exchange(ref _driving, 0); // a full fence: a request made meanwhile is seen below
                if (Volatile.Read(ref _requested) == 0)
                {
                    return;
                }
            }
        }

        private async Task ResumeAfterAsync(Task wait)
        {
            try
            {
                await wait;
            }
#pragma warning disable CA1031 // As in Run.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Fail(ex);
            }

            Interlocked.Exchange(ref _requested, 1);
            Interlocked.Exchange(ref _driving, 0);
            Run();
        }

        private void Fail(Exception ex)
        {
            _stopSending = true;
            // A closed connection is not a failure to report: some brokers hang up after
            // refusing a publish, and the session just ends.
            if (ex is not OperationCanceledException && !_link.IsLinkLoss(ex))
            {
                UplinkLog.SendFailed(_forwarder._logger, _forwarder.Name, ex);
            }

            _completion.TrySetException(ex);
        }

        // Confirms the head, then fills the window. Returns what it has to wait for, or null.
        private Task? StepAsync()
        {
            var wait = ConfirmHeadAsync() ?? FillAsync();
            lock (_lock)
            {
                // What the stall bound is measured on: the oldest publish still unconfirmed.
                ref var head = ref _slots[_head % _slots.Length];
                Volatile.Write(ref _forwarder._awaitingSince, _head < _tail && head.State != SlotState.Done ? head.SentAt : 0);
            }

            return wait;
        }

        private Task? FillAsync()
        {
            var unsynced = _forwarder.Unsynced;
            while (!_stopSending)
            {
                if (_tail - _head >= _slots.Length)
                {
                    return null; // full: acknowledgements drive the next sends
                }

                if (_tail - _head + unsynced.Count >= unsynced.Limit)
                {
                    unsynced.Sync(); // its completion drives the next sends
                    return null;
                }

                if (_held is null)
                {
                    if (!_consumer.TryRead(out var delivery))
                    {
                        _starved.Writer.TryWrite(true);
                        return null;
                    }

                    _held = delivery;
                }

                if (_limiter is not null)
                {
                    var turn = _limiter.WaitAsync(_cancellation);
                    if (!turn.IsCompleted)
                    {
                        return SendHeldAfterAsync(turn);
                    }
                }

                var wait = SendHeldAsync();
                if (wait is not null)
                {
                    return wait;
                }
            }

            return null;
        }

        private async Task SendHeldAfterAsync(ValueTask turn)
        {
            await turn;
            var wait = SendHeldAsync();
            if (wait is not null)
            {
                await wait;
            }
        }

        // Takes a slot, then hands the message to the link: an answer can only come once it is
        // sent, and finds its slot waiting. Returns the send while it is pending or failed.
        private Task? SendHeldAsync()
        {
            var delivery = _held!.Value;
            _held = null;
            long sequence;
            lock (_lock)
            {
                sequence = _tail;
                _slots[sequence % _slots.Length] = new Slot
                {
                    DeliveryTag = delivery.DeliveryTag,
                    Message = delivery.Message,
                    SentAt = _forwarder._time.GetTimestamp(),
                    State = SlotState.Sent,
                };
                _tail = sequence + 1;
            }

            Volatile.Write(ref _forwarder._inFlight, (int)(_tail - _head));
            var send = _link.PublishAsync(sequence, delivery.Message, _cancellation);
            return send.IsCompletedSuccessfully ? null : send; // pending or failed: the driver waits for it
        }

        private struct Slot
        {
            public ulong DeliveryTag;
            public GatewayMessage? Message;
            public PublishResult Result;
            public long SentAt;
            public SlotState State;
            public bool DeadLettered;
        }
    }
}
