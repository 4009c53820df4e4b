namespace Gateway.Mqtt;

/// <summary>
/// The router's address mapping for MQTT (ARCHITECTURE.md), used by the MQTT endpoint and the
/// MQTT uplinks alike. MQTT topic ↔ AMQP routing key, as RabbitMQ's MQTT plugin maps them: '/'
/// and '.' swap both ways, and in filters '+' becomes '*' ('#' stays). https://www.rabbitmq.com/docs/mqtt#topic-level-separator-and-wildcards
/// </summary>
public static class MqttTopics
{
    public static string ToRoutingKey(string topic) => Swap(topic, filter: false);

    public static string ToBindingKey(string topicFilter) => Swap(topicFilter, filter: true);

    public static string ToTopic(string routingKey) => Swap(routingKey, filter: false);

    private static string Swap(string value, bool filter)
    {
        var span = value.AsSpan();
        if (span.IndexOfAny(filter ? "/.+" : "/.") < 0)
        {
            return value;
        }

        return string.Create(value.Length, (value, filter), static (destination, state) =>
        {
            var source = state.value.AsSpan();
            for (var i = 0; i < source.Length; i++)
            {
                destination[i] = source[i] switch
                {
                    '/' => '.',
                    '.' => '/',
                    '+' when state.filter => '*',
                    var c => c,
                };
            }
        });
    }
}
