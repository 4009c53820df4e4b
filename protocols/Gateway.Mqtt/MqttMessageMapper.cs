using System.Buffers;
using System.Globalization;
using Gateway.Routing;
using MQTTnet;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace Gateway.Mqtt;

/// <summary>
/// MQTT application messages ↔ router messages (ARCHITECTURE.md, address mapping): publishes go
/// to <c>amq.topic</c>; MQTT 5 content type, correlation data, response topic, message expiry and
/// user properties map onto the shared properties. QoS 0 is transient, QoS 1 and 2 persistent;
/// QoS 2 and the retain flag travel as <c>x-mqtt-*</c> headers, as in RabbitMQ's MQTT plugin.
/// </summary>
public static class MqttMessageMapper
{
    public const string QosHeader = "x-mqtt-publish-qos";
    public const string RetainHeader = "x-mqtt-retain";
    public const string Protocol = "mqtt";

    public static GatewayMessage ToGateway(MqttApplicationMessage message, string clientId, string? user)
    {
        var body = message.Payload.IsEmpty ? ReadOnlyMemory<byte>.Empty : message.Payload.ToArray();
        var properties = ToProperties(message);
        return new GatewayMessage(
            MessageRouter.AmqTopic,
            MqttTopics.ToRoutingKey(message.Topic),
            body,
            properties,
            new MessageOrigin(Protocol, clientId, user));
    }

    public static MqttApplicationMessage ToMqtt(GatewayMessage message)
    {
        var properties = message.Properties;
        var headers = properties.Headers;
        var qos = properties.Persistent ? MqttQualityOfServiceLevel.AtLeastOnce : MqttQualityOfServiceLevel.AtMostOnce;
        var retain = false;
        List<MqttUserProperty>? userProperties = null;
        if (headers is not null)
        {
            foreach (var (name, value) in headers)
            {
                switch (name)
                {
                    case QosHeader:
                        // A byte as published; an int once it has been through the store.
                        qos = value switch
                        {
                            byte b when b <= 2 => (MqttQualityOfServiceLevel)b,
                            int i when i is >= 0 and <= 2 => (MqttQualityOfServiceLevel)i,
                            _ => qos,
                        };
                        break;
                    case RetainHeader:
                        retain = value is true;
                        break;
                    default:
                        (userProperties ??= []).Add(new MqttUserProperty(name, System.Text.Encoding.UTF8.GetBytes(HeaderText(value)).AsMemory()));
                        break;
                }
            }
        }

        return new MqttApplicationMessage
        {
            Topic = MqttTopics.ToTopic(message.RoutingKey),
            Payload = new ReadOnlySequence<byte>(message.Body),
            QualityOfServiceLevel = qos,
            Retain = retain,
            ContentType = properties.ContentType,
            CorrelationData = properties.CorrelationId.IsEmpty ? null : properties.CorrelationId.ToArray(),
            ResponseTopic = properties.ReplyTo is { } replyTo ? MqttTopics.ToTopic(replyTo) : null,
            MessageExpiryInterval = properties.Expiration is { } expiry ? (uint)Math.Clamp(Math.Ceiling(expiry.TotalSeconds), 1, uint.MaxValue) : 0,
            UserProperties = userProperties,
        };
    }

    private static MessageProperties ToProperties(MqttApplicationMessage message)
    {
        var qos = message.QualityOfServiceLevel;
        var hasV5Properties = message.ContentType is not null || message.CorrelationData is not null ||
            message.ResponseTopic is not null || message.MessageExpiryInterval != 0 || message.UserProperties is { Count: > 0 };
        if (!hasV5Properties && qos != MqttQualityOfServiceLevel.ExactlyOnce && !message.Retain)
        {
            return qos == MqttQualityOfServiceLevel.AtMostOnce ? MessageProperties.Empty : MessageProperties.PersistentEmpty;
        }

        Dictionary<string, object?>? headers = null;
        if (message.UserProperties is { Count: > 0 } userProperties)
        {
            headers = new Dictionary<string, object?>(userProperties.Count + 2, StringComparer.Ordinal);
            foreach (var property in userProperties)
            {
                // MQTT allows a name more than once; headers keep the first, as STOMP does.
                headers.TryAdd(property.Name, property.ReadValueAsString());
            }
        }

        if (qos == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            (headers ??= new(2, StringComparer.Ordinal))[QosHeader] = (byte)2;
        }

        if (message.Retain)
        {
            (headers ??= new(1, StringComparer.Ordinal))[RetainHeader] = true;
        }

        return new MessageProperties
        {
            Persistent = qos != MqttQualityOfServiceLevel.AtMostOnce,
            ContentType = message.ContentType,
            CorrelationId = message.CorrelationData,
            ReplyTo = message.ResponseTopic is { } responseTopic ? MqttTopics.ToRoutingKey(responseTopic) : null,
            Expiration = message.MessageExpiryInterval == 0 ? null : TimeSpan.FromSeconds(message.MessageExpiryInterval),
            Headers = headers,
        };
    }

    private static string HeaderText(object? value) => value switch
    {
        null => string.Empty,
        string s => s,
        byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}
