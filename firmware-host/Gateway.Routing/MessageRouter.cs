using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Gateway.Routing;

/// <summary>
/// The one router of the gateway: exchanges, queues and bindings as in AMQP 0-9-1
/// (ARCHITECTURE.md). Publishing is lock-free up to the per-queue lock; topology changes take
/// one router-wide lock.
/// </summary>
public sealed class MessageRouter : IMessageRouter, IDisposable
{
    public const string AmqTopic = "amq.topic";

    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Exchange> _exchanges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, MessageQueue> _queues = new(StringComparer.Ordinal);
    private readonly Lock _topology = new();
    private readonly TimeProvider _time;
    private readonly IMessageStore? _store;
    private readonly IDefinitionStore? _definitions;
    private readonly ITimer _sweeper;
    private bool _restoring;

    /// <summary>Creates the router; with <paramref name="definitions"/>, what they hold is declared again first.</summary>
    public MessageRouter(TimeProvider? timeProvider = null, IMessageStore? store = null, IDefinitionStore? definitions = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        _store = store;
        _definitions = definitions;
        _exchanges[string.Empty] = new DefaultExchange(this) { BuiltIn = true };
        AddBuiltIn(new DirectExchange("amq.direct", durable: true, autoDelete: false) { BuiltIn = true });
        AddBuiltIn(new TopicExchange(AmqTopic, durable: true, autoDelete: false) { BuiltIn = true });
        AddBuiltIn(new FanoutExchange("amq.fanout", durable: true, autoDelete: false) { BuiltIn = true });
        AddBuiltIn(new HeadersExchange("amq.headers", durable: true, autoDelete: false) { BuiltIn = true });
        AddBuiltIn(new HeadersExchange("amq.match", durable: true, autoDelete: false) { BuiltIn = true });
        _sweeper = _time.CreateTimer(static state => ((MessageRouter)state!).SweepExpired(), this, SweepInterval, SweepInterval);
        if (definitions is not null)
        {
            Restore(definitions.Definitions);
        }
    }

    public IReadOnlyCollection<Exchange> Exchanges => [.. _exchanges.Values];

    public IReadOnlyCollection<MessageQueue> Queues => [.. _queues.Values];

    /// <summary>
    /// Routes a message; completes when every durable queue that took it has it on disk, and
    /// after waiting for flow control.
    /// </summary>
    public ValueTask<RouteResult> PublishAsync(GatewayMessage message, CancellationToken cancellationToken)
    {
        var ticket = Publish(message);
        return !ticket.FlowBlocked && ticket.Committed is null
            ? ValueTask.FromResult(ticket.Result)
            : WaitAsync(ticket, cancellationToken);
    }

    /// <summary>Routes without waiting for flow control or the disk.</summary>
    public RouteResult Route(GatewayMessage message) => Publish(message).Result;

    /// <inheritdoc/>
    public PublishTicket Publish(GatewayMessage message)
    {
        if (!_exchanges.TryGetValue(message.Exchange, out var exchange))
        {
            return new PublishTicket(RouteResult.ExchangeNotFound, PublishRefusal.None, committed: null, flowBlocked: null);
        }

        var targets = RouteTargets.Rent();
        try
        {
            exchange.Route(message, targets);
            return EnqueueAll(message, targets);
        }
        finally
        {
            RouteTargets.Return(targets);
        }
    }

    public Exchange DeclareExchange(string name, ExchangeType type, bool durable = false, bool autoDelete = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_topology)
        {
            if (_exchanges.TryGetValue(name, out var existing))
            {
                if (existing.Type != type || (!existing.BuiltIn && (existing.Durable != durable || existing.AutoDelete != autoDelete)))
                {
                    RoutingException.Throw(
                        RoutingException.PreconditionFailed,
                        $"inequivalent arg for exchange '{name}': declared as {Exchange.TypeName(existing.Type)}, durable={existing.Durable}, auto-delete={existing.AutoDelete}");
                }

                return existing;
            }

            if (name.Length == 0 || name.StartsWith("amq.", StringComparison.Ordinal))
            {
                RoutingException.Throw(RoutingException.AccessRefused, $"exchange name '{name}' is reserved");
            }

            Exchange exchange = type switch
            {
                ExchangeType.Direct => new DirectExchange(name, durable, autoDelete),
                ExchangeType.Topic => new TopicExchange(name, durable, autoDelete),
                ExchangeType.Fanout => new FanoutExchange(name, durable, autoDelete),
                ExchangeType.Headers => new HeadersExchange(name, durable, autoDelete),
                _ => throw new ArgumentOutOfRangeException(nameof(type)),
            };
            _exchanges[name] = exchange;
            if (durable && !_restoring)
            {
                _definitions?.SaveExchange(new ExchangeDefinition(name, type, autoDelete));
            }

            return exchange;
        }
    }

    public Exchange GetExchange(string name) =>
        _exchanges.TryGetValue(name, out var exchange)
            ? exchange
            : throw new RoutingException(RoutingException.NotFound, $"no exchange '{name}'");

    public bool DeleteExchange(string name, bool ifUnused = false)
    {
        lock (_topology)
        {
            if (!_exchanges.TryGetValue(name, out var exchange))
            {
                return false;
            }

            if (exchange.BuiltIn)
            {
                RoutingException.Throw(RoutingException.AccessRefused, $"exchange '{name}' is built in");
            }

            var bindings = exchange.GetBindings();
            if (ifUnused && bindings.Count > 0)
            {
                RoutingException.Throw(RoutingException.PreconditionFailed, $"exchange '{name}' in use");
            }

            foreach (var binding in bindings)
            {
                exchange.Unbind(binding.Key, binding.Queue, binding.Arguments);
                binding.Queue.BindingsLocked.Remove(binding);
                ForgetBinding(exchange, binding);
            }

            return RemoveExchangeLocked(exchange);
        }
    }

    public MessageQueue DeclareQueue(string name, QueueOptions options)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(options);
        lock (_topology)
        {
            if (name.Length == 0)
            {
                name = "amq.gen-" + Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            }
            else if (_queues.TryGetValue(name, out var existing))
            {
                CheckOwner(existing, options.Owner);
                var declared = existing.Options;
                if (declared.Durable != options.Durable || declared.Exclusive != options.Exclusive ||
                    declared.AutoDelete != options.AutoDelete || QueueArguments.Parse(options.Arguments) != existing.Arguments)
                {
                    RoutingException.Throw(RoutingException.PreconditionFailed, $"inequivalent arguments for queue '{name}'");
                }

                return existing;
            }
            else if (name.StartsWith("amq.", StringComparison.Ordinal))
            {
                RoutingException.Throw(RoutingException.AccessRefused, $"queue name '{name}' is reserved");
            }

            if (options.Durable && _store is null)
            {
                RoutingException.Throw(RoutingException.NotImplemented, $"queue '{name}': durable queues need the message store, which is not enabled");
            }

            var queue = new MessageQueue(name, options, this, _time, options.Durable ? _store : null);
            _queues[name] = queue;
            if (IsKept(queue) && !_restoring)
            {
                _definitions!.SaveQueue(new QueueDefinition(name, options.AutoDelete, options.Arguments));
            }

            return queue;
        }
    }

    public MessageQueue GetQueue(string name) =>
        _queues.TryGetValue(name, out var queue)
            ? queue
            : throw new RoutingException(RoutingException.NotFound, $"no queue '{name}'");

    public bool TryGetQueue(string name, [MaybeNullWhen(false)] out MessageQueue queue) => _queues.TryGetValue(name, out queue);

    public int DeleteQueue(string name, bool ifUnused = false, bool ifEmpty = false)
    {
        MessageQueue? queue;
        lock (_topology)
        {
            if (!_queues.TryGetValue(name, out queue))
            {
                return 0;
            }

            if (ifUnused && queue.ConsumerCount > 0)
            {
                RoutingException.Throw(RoutingException.PreconditionFailed, $"queue '{name}' in use");
            }

            if (ifEmpty && queue.ReadyCount > 0)
            {
                RoutingException.Throw(RoutingException.PreconditionFailed, $"queue '{name}' not empty");
            }

            _queues.TryRemove(name, out _);
            if (IsKept(queue))
            {
                _definitions!.DeleteQueue(name);
            }

            foreach (var binding in queue.BindingsLocked)
            {
                if (_exchanges.TryGetValue(binding.Exchange, out var exchange))
                {
                    exchange.Unbind(binding.Key, queue, binding.Arguments);
                    ForgetBinding(exchange, binding);
                    DeleteIfAutoDeleteLocked(exchange);
                }
            }

            queue.BindingsLocked.Clear();
        }

        return queue.MarkDeleted();
    }

    public void Bind(string exchange, string queue, string bindingKey, IReadOnlyDictionary<string, object?>? arguments = null)
    {
        lock (_topology)
        {
            var target = GetExchange(exchange);
            var destination = GetQueue(queue);
            var binding = new Binding(target.Name, destination, bindingKey, arguments);
            if (target.Bind(binding))
            {
                destination.BindingsLocked.Add(binding);
                if (target.Durable && target.Name.Length > 0 && IsKept(destination) && !_restoring)
                {
                    _definitions!.SaveBinding(new BindingDefinition(target.Name, destination.Name, bindingKey, arguments));
                }
            }
        }
    }

    public bool Unbind(string exchange, string queue, string bindingKey, IReadOnlyDictionary<string, object?>? arguments = null)
    {
        lock (_topology)
        {
            if (!_exchanges.TryGetValue(exchange, out var source) || !_queues.TryGetValue(queue, out var destination))
            {
                return false;
            }

            if (!source.Unbind(bindingKey, destination, arguments))
            {
                return false;
            }

            destination.BindingsLocked.RemoveAll(b => b.Exchange == exchange && b.Matches(bindingKey, destination, arguments));
            ForgetBinding(source, new Binding(exchange, destination, bindingKey, arguments));
            DeleteIfAutoDeleteLocked(source);
            return true;
        }
    }

    public void ReleaseOwner(string owner)
    {
        foreach (var queue in _queues.Values)
        {
            if (queue.Options.Exclusive && queue.Options.Owner == owner)
            {
                DeleteQueue(queue.Name);
            }
        }
    }

    public void Dispose() => _sweeper.Dispose();

    private static void CheckOwner(MessageQueue queue, string? owner)
    {
        if (queue.Options.Exclusive && queue.Options.Owner != owner)
        {
            RoutingException.Throw(RoutingException.ResourceLocked, $"cannot obtain exclusive access to locked queue '{queue.Name}'");
        }
    }

    private static async ValueTask<RouteResult> WaitAsync(PublishTicket ticket, CancellationToken cancellationToken)
    {
        if (ticket.Committed is not null)
        {
            await ticket.Committed.WaitAsync(cancellationToken);
        }

        await ticket.WaitForFlowAsync(cancellationToken);
        return ticket.Result;
    }

    private static PublishTicket EnqueueAll(GatewayMessage message, RouteTargets targets)
    {
        int accepted = 0, rejected = 0;
        var refusal = PublishRefusal.None;
        MessageQueue? flowBlocked = null;
        Task? committed = null;
        List<Task>? commits = null;
        for (var i = 0; i < targets.Count; i++)
        {
            var outcome = targets[i].Enqueue(message, out var commit);
            if (commit is not null)
            {
                if (committed is null)
                {
                    committed = commit;
                }
                else
                {
                    (commits ??= [committed]).Add(commit);
                }
            }

            switch (outcome)
            {
                case EnqueueOutcome.Accepted:
                    accepted++;
                    break;
                case EnqueueOutcome.AcceptedFlowBlocked:
                    accepted++;
                    flowBlocked = targets[i];
                    break;
                case EnqueueOutcome.RejectedFull:
                    rejected++;
                    refusal = PublishRefusal.QueueFull;
                    break;
                case EnqueueOutcome.RejectedLowDisk:
                    rejected++;
                    refusal = PublishRefusal.LowDisk;
                    break;
                case EnqueueOutcome.RejectedStoreBusy:
                    rejected++;
                    refusal = PublishRefusal.StoreBusy;
                    break;
            }
        }

        if (commits is not null)
        {
            committed = Task.WhenAll(commits);
        }

        var status = rejected > 0 ? RouteStatus.Rejected : accepted > 0 ? RouteStatus.Routed : RouteStatus.Unroutable;
        return new PublishTicket(new RouteResult(status, accepted, rejected), refusal, committed, flowBlocked);
    }

    private void AddBuiltIn(Exchange exchange) => _exchanges[exchange.Name] = exchange;

    private void DeleteIfAutoDeleteLocked(Exchange exchange)
    {
        if (exchange.AutoDelete && !exchange.BuiltIn && exchange.BindingCount == 0)
        {
            RemoveExchangeLocked(exchange);
        }
    }

    private bool RemoveExchangeLocked(Exchange exchange)
    {
        if (exchange.Durable)
        {
            _definitions?.DeleteExchange(exchange.Name);
        }

        return _exchanges.TryRemove(exchange.Name, out _);
    }

    // Kept: durable queues not owned by a connection and not declared from configuration.
    private bool IsKept(MessageQueue queue) =>
        _definitions is not null && queue.Options is { Durable: true, Exclusive: false, FromConfiguration: false };

    private void ForgetBinding(Exchange exchange, Binding binding)
    {
        if (exchange.Durable && exchange.Name.Length > 0 && IsKept(binding.Queue))
        {
            _definitions!.DeleteBinding(new BindingDefinition(exchange.Name, binding.Queue.Name, binding.Key, binding.Arguments));
        }
    }

    // Declares what was kept; a definition that no longer applies (say, a binding to an exchange
    // that failed to come back) is skipped rather than stopping the start.
    private void Restore(StoredDefinitions definitions)
    {
        _restoring = true;
        try
        {
            foreach (var exchange in definitions.Exchanges)
            {
                Try(() => DeclareExchange(exchange.Name, exchange.Type, durable: true, exchange.AutoDelete));
            }

            foreach (var queue in definitions.Queues)
            {
                Try(() => DeclareQueue(queue.Name, new QueueOptions { Durable = true, AutoDelete = queue.AutoDelete, Arguments = queue.Arguments }));
            }

            foreach (var binding in definitions.Bindings)
            {
                Try(() => Bind(binding.Exchange, binding.Queue, binding.Key, binding.Arguments));
            }
        }
        finally
        {
            _restoring = false;
        }

        static void Try(Action declare)
        {
            try
            {
                declare();
            }
            catch (RoutingException)
            {
                // Skipped: see above.
            }
        }
    }

    private void SweepExpired()
    {
        foreach (var queue in _queues.Values)
        {
            queue.ExpireNow();
        }
    }
}
