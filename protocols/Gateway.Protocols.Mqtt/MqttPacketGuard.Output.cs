using System.Buffers;
using System.IO.Pipelines;

namespace Gateway.Protocols.Mqtt;

internal sealed partial class MqttPacketGuard
{
    /// <summary>
    /// The writer MQTTnet sends through. Forwards everything but completion, which the connection
    /// handler does last, and a flush the sender has said another packet follows at once
    /// (<see cref="FlushWithNext"/>). MQTTnet's send loop is not awaited when its connection
    /// ends, so it may still be writing a packet when the handler returns and the transport's
    /// writer is completed (its buffers go back to the pool); <see cref="CloseAsync"/> waits for
    /// that packet, and later writes go to a scratch buffer, as writes to a closed socket would.
    /// </summary>
    internal sealed class MqttOutput(PipeWriter inner) : PipeWriter
    {
        private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(2);
        private readonly Lock _gate = new();
        private bool _closed;
        private bool _writing; // between the first GetSpan/GetMemory of a packet and its flush
        private TaskCompletionSource? _idle;
        private byte[]? _scratch;

        // Set and consumed on the connection's send loop (MQTTnet sends one packet at a time).
        private bool _flushWithNext;

        public PipeWriter Inner => inner;

        /// <summary>
        /// The next flush is left to the packet after it: a run of acknowledgements released by
        /// one commit leaves in one socket write instead of one each. Only for a packet whose
        /// successor is already on its way to the send loop, or it would wait for traffic.
        /// </summary>
        public void FlushWithNext() => _flushWithNext = true;

        /// <summary>
        /// After MQTTnet is done with the connection: waits (bounded) for a packet it is still
        /// writing, and turns later writes into no-ops, so that the transport's writer can be
        /// written to by the handler and completed safely.
        /// </summary>
        public async Task CloseAsync()
        {
            Task idle;
            lock (_gate)
            {
                _closed = true;
                if (!_writing)
                {
                    return;
                }

                _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                idle = _idle.Task;
            }

            await idle.WaitAsync(CloseWait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!idle.IsCompleted)
            {
                inner.CancelPendingFlush(); // a flush held up by a client that stopped reading
                await idle.WaitAsync(CloseWait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes)
        {
            if (ToInner())
            {
                inner.Advance(bytes);
            }
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
        }

        public override ValueTask CompleteAsync(Exception? exception = null) => ValueTask.CompletedTask;

        public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            if (!BeginPacket())
            {
                return new FlushResult(isCanceled: false, isCompleted: true);
            }

            try
            {
                return SkipFlush() ? default : await inner.FlushAsync(cancellationToken);
            }
            finally
            {
                EndPacket();
            }
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => BeginPacket() ? inner.GetMemory(sizeHint) : Scratch(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => BeginPacket() ? inner.GetSpan(sizeHint) : Scratch(sizeHint).Span;

        public override async ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            if (!BeginPacket())
            {
                return new FlushResult(isCanceled: false, isCompleted: true);
            }

            try
            {
                if (!SkipFlush())
                {
                    return await inner.WriteAsync(source, cancellationToken);
                }

                inner.Write(source.Span);
                return default;
            }
            finally
            {
                EndPacket();
            }
        }

        private bool SkipFlush()
        {
            if (!_flushWithNext)
            {
                return false;
            }

            _flushWithNext = false;
            return true;
        }

        // False once closed: the caller writes to the scratch buffer instead.
        private bool BeginPacket()
        {
            lock (_gate)
            {
                if (_closed && !_writing)
                {
                    return false;
                }

                _writing = true;
                return true;
            }
        }

        // Whether the span or memory handed out last came from the transport (not the scratch buffer).
        private bool ToInner()
        {
            lock (_gate)
            {
                return !_closed || _writing;
            }
        }

        private void EndPacket()
        {
            lock (_gate)
            {
                _writing = false;
                _idle?.TrySetResult();
            }
        }

        private Memory<byte> Scratch(int sizeHint)
        {
            if (_scratch is null || _scratch.Length < sizeHint)
            {
                _scratch = new byte[Math.Max(sizeHint, 4096)];
            }

            return _scratch;
        }
    }
}
