using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Logging;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Keeps one <c>amq.topic</c> binding per distinct MQTT topic filter, counted across sessions:
/// bound when the first session subscribes, unbound when the last one goes.
/// </summary>
internal sealed class SubscriptionBindings(IMessageRouter router, ILogger logger)
{
    private readonly Lock _sync = new();
    private readonly Dictionary<string, HashSet<string>> _byClient = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _filterCounts = new(StringComparer.Ordinal);

    public string Queue { get; set; } = MqttAdapter.DeliveryQueue;

    public Task AddAsync(string clientId, string filter)
    {
        lock (_sync)
        {
            if (!_byClient.TryGetValue(clientId, out var filters))
            {
                _byClient[clientId] = filters = new HashSet<string>(StringComparer.Ordinal);
            }

            if (filters.Add(filter))
            {
                Increment(filter, clientId);
            }
        }

        return Task.CompletedTask;
    }

    public Task RemoveAsync(string clientId, string filter)
    {
        lock (_sync)
        {
            if (_byClient.TryGetValue(clientId, out var filters) && filters.Remove(filter))
            {
                Decrement(filter);
                if (filters.Count == 0)
                {
                    _byClient.Remove(clientId);
                }
            }
        }

        return Task.CompletedTask;
    }

    public Task RemoveClientAsync(string clientId)
    {
        lock (_sync)
        {
            if (_byClient.Remove(clientId, out var filters))
            {
                foreach (var filter in filters)
                {
                    Decrement(filter);
                }
            }
        }

        return Task.CompletedTask;
    }

    private void Increment(string filter, string clientId)
    {
        _filterCounts.TryGetValue(filter, out var count);
        _filterCounts[filter] = count + 1;
        if (count == 0)
        {
            try
            {
                router.Bind(MessageRouter.AmqTopic, Queue, BindingKey(filter));
            }
            catch (RoutingException ex)
            {
                MqttLog.SubscribeFailed(logger, filter, clientId, ex);
            }
        }
    }

    private void Decrement(string filter)
    {
        var count = _filterCounts[filter] - 1;
        if (count == 0)
        {
            _filterCounts.Remove(filter);
            router.Unbind(MessageRouter.AmqTopic, Queue, BindingKey(filter));
        }
        else
        {
            _filterCounts[filter] = count;
        }
    }

    private static string BindingKey(string filter) => MqttTopics.ToBindingKey(filter);
}
