using Gateway.Routing;

namespace Gateway.Storage;

public sealed partial class LiteDbMessageStore
{
    /// <summary>What applying an operation did to the database.</summary>
    private enum StoreEffect
    {
        None,

        /// <summary>Wrote, but losing it in a crash costs only a redelivery (a removal).</summary>
        Wrote,

        /// <summary>Wrote something a caller is waiting to see on disk.</summary>
        MustFlush,
    }

    /// <summary>LiteDB's page: what a write touching one document may cost at least.</summary>
    private const int PageSize = 8192;

    /// <summary>One request to the writer thread; applied inside the group's transaction.</summary>
    private abstract class StoreOperation
    {
        /// <summary>Nobody waits for it (a removal): a failure is logged with its group, never thrown at anyone.</summary>
        public bool Detached { get; set; }

        /// <summary>
        /// At most how many bytes applying it may have LiteDB write (reserved before the group
        /// starts, see <see cref="LiteDbLogFile.Reserve"/>); zero for operations that only read.
        /// </summary>
        public virtual long WriteBytes => PageSize;

        public abstract StoreEffect Apply(LiteDbMessageStore store);

        public abstract void Complete();

        public abstract void Fail(Exception exception);
    }

    private abstract class StoreOperation<T> : StoreOperation
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Task => _completion.Task;

        public override void Complete() => _completion.TrySetResult(_result);

        public override void Fail(Exception exception)
        {
            if (Detached)
            {
                _completion.TrySetResult(default!); // a lost removal only means a redelivery
            }
            else
            {
                _completion.TrySetException(exception);
            }
        }

        protected void SetResult(T result) => _result = result;
    }

    // With no offset the store picks the next one of the queue's log.
    private sealed class AppendOperation(string queue, long? offset, GatewayMessage message, TimeSpan enqueuedAt) : StoreOperation<long>
    {
        public override long WriteBytes => message.Body.Length + 512L;

        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            SetResult(store._log.Append(queue, offset, message, enqueuedAt));
            return StoreEffect.MustFlush;
        }
    }

    private sealed class ReadOperation(string queue, long fromOffset, long toOffset, int max) : StoreOperation<IReadOnlyList<StoredMessage>>
    {
        public override long WriteBytes => 0; // appends of its group are written first: their bytes count

        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            SetResult(store._log.Read(queue, fromOffset, toOffset, max));
            return StoreEffect.None;
        }
    }

    // Removes the offsets from first to last inclusive: consumed, dropped or purged.
    private sealed class TrimOperation(string queue, long first, long last) : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var deleted = store._log.Remove(queue, first, last);
            store._deferredRemovals += deleted;
            SetResult(deleted > 0);
            return deleted > 0 ? StoreEffect.Wrote : StoreEffect.None;
        }
    }

    // Makes the group write the removals deferred so far (RemovalDelay is up).
    private sealed class WriteRemovalsOperation : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            store._writeRemovals = true;
            return StoreEffect.None;
        }
    }

    // Makes the group write the removals deferred so far and flush them like an append: the
    // operations before it are in the same group or an earlier one, so theirs are on disk too.
    private sealed class SyncRemovalsOperation : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            store._writeRemovals = true;
            return StoreEffect.MustFlush;
        }
    }

    // The group saves the clock whenever it writes; this makes it write.
    private sealed class SaveClockOperation : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store) => StoreEffect.MustFlush;
    }

    private sealed class CountOperation(string queue) : StoreOperation<long>
    {
        public override long WriteBytes => 0;

        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            SetResult(store._log.Count(queue));
            return StoreEffect.None;
        }
    }
}
