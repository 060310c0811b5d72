<?php
// The business logic of a GatewayWorker chat app, behind fanout-relay's backend proxy ([proxy]):
// GatewayWorker's Events::onWebSocketConnect / onMessage / onClose become the POSTs the relay
// sends here (docs/relay.md, "Backend proxy"); pushes go back through the server API (Gateway.php).
//
//   FANOUT_API_KEY=... php -S 127.0.0.1:9000 backend.php      # PHP_CLI_SERVER_WORKERS=4 for parallel requests
//
// What it does:
//   connect    ?uid=alice&room=lobby (a real app reads its session cookie: $req['cookies']['PHPSESSID'])
//              -> accepted as user alice (bindUid) in topic room:lobby (joinGroup); no uid -> 401
//   message    {"type":"say","text":"hi"}              -> everyone in the room (sendToGroup)
//              {"type":"whisper","to":"bob","text":"hi"} -> every connection of bob (sendToUid)
//   rpc        whoami -> {"user":..,"client":..}; online {"user":"bob"} -> isUidOnline
//   disconnect -> the room hears {"type":"left","user":..}

require __DIR__ . '/Gateway.php';

Gateway::$apiUrl = getenv('FANOUT_API_URL') ?: 'http://127.0.0.1:8081';
Gateway::$apiKey = getenv('FANOUT_API_KEY') ?: '';

const ROOM = 'room:lobby';

final class Events
{
    /** GatewayWorker: onConnect + onWebSocketConnect ($_GET, $_COOKIE, $_SERVER of the upgrade). */
    public static function onConnect(array $req): array
    {
        parse_str($req['query'] ?? '', $get);
        $uid = $get['uid'] ?? ($req['cookies']['uid'] ?? '');
        if (!is_string($uid) || !preg_match('/^[A-Za-z0-9_]{1,32}$/', $uid)) {
            return ['accept' => false, 'status' => 401, 'reason' => 'log in first'];
        }
        $room = 'room:' . (is_string($get['room'] ?? null) ? $get['room'] : 'lobby');
        // bindUid and joinGroup in one answer: the relay applies both before the client's first frame.
        return ['accept' => true, 'user' => $uid, 'topics' => [$room]];
    }

    /** GatewayWorker: onMessage($client_id, $message). */
    public static function onMessage(string $clientId, string $uid, string $message): void
    {
        $m = json_decode($message, true);
        if (!is_array($m)) {
            Gateway::sendToClient($clientId, ['type' => 'error', 'msg' => 'send JSON']);
            return;
        }
        switch ($m['type'] ?? '') {
            case 'say':
                Gateway::sendToGroup(ROOM, ['type' => 'say', 'from' => $uid, 'text' => (string)($m['text'] ?? '')]);
                break;
            case 'whisper':
                $to = (string)($m['to'] ?? '');
                $n = Gateway::sendToUid($to, ['type' => 'whisper', 'from' => $uid, 'text' => (string)($m['text'] ?? '')]);
                Gateway::sendToClient($clientId, ['type' => 'sent', 'to' => $to, 'connections' => $n]);
                break;
            default:
                Gateway::sendToClient($clientId, ['type' => 'error', 'msg' => 'unknown type']);
        }
    }

    /** A request that wants an answer ({"op":"rpc",...}): GatewayWorker apps reply with sendToCurrentClient. */
    public static function onRpc(string $clientId, string $uid, string $method, $data): array
    {
        switch ($method) {
            case 'whoami':
                return ['data' => ['user' => $uid, 'client' => $clientId]];
            case 'online':
                return ['data' => ['online' => Gateway::isUidOnline((string)($data['user'] ?? ''))]];
            default:
                return ['error' => ['code' => 4404, 'msg' => "no method $method"]];
        }
    }

    /** GatewayWorker: onClose($client_id). */
    public static function onClose(string $clientId, string $uid): void
    {
        if ($uid !== '') {
            Gateway::sendToGroup(ROOM, ['type' => 'left', 'user' => $uid]);
        }
    }
}

// ---- the proxy's four endpoints: POST {url}/connect, /message, /rpc, /disconnect
$req = json_decode(file_get_contents('php://input'), true);
$event = basename(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH));
header('Content-Type: application/json');
if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !is_array($req)) {
    http_response_code(400);
    echo '{"error":"POST JSON"}';
    return;
}
try {
    switch ($event) {
        case 'connect':
            $answer = Events::onConnect($req);
            break;
        case 'message':
            Events::onMessage($req['client'], $req['user'], $req['data']);
            $answer = new stdClass();
            break;
        case 'rpc':
            $answer = Events::onRpc($req['client'], $req['user'], (string)$req['method'], $req['data']);
            break;
        case 'disconnect':
            Events::onClose($req['client'], $req['user']);
            $answer = new stdClass();
            break;
        default:
            http_response_code(404);
            $answer = ['error' => "no event $event"];
    }
} catch (Throwable $e) {
    error_log("backend: $event: " . $e->getMessage());
    http_response_code(500);
    $answer = ['error' => 'backend error'];
}
echo json_encode($answer, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
