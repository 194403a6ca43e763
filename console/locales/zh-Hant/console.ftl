# 督導控制台文字（繁體中文）。每條訊息在 ../en/console.ftl 亦有（單元測試 `i18n::tests` 雙向檢查）。

## 導覽及每頁框架
console-name = Clearway 控制台
nav-ports = 口岸
nav-rollout = 部署
nav-users = 用戶
nav-account = 帳戶
nav-console-audit = 控制台稽核
nav-desk = 服務櫃台
sign-out = 登出
language = 語言
not-found = 找不到
not-found-what = 沒有這個{ $what }。
back-to-console = 返回控制台
loading = 載入中…
sending = 傳送中…
sign-in-again = 重新登入
reason-required = 原因（必填，會記入審計紀錄）

## 錯誤前綴
err-404 = 找不到：
err-403 = 已拒絕：
err-401 = 請登入：
err-413 = 內容過大：
err-422 = 請檢查表格：
err-409 = 口岸系統拒絕：
err-502 = 無法連接口岸：
err-other = 錯誤：

## 角色
role-supervisor = 督導人員
role-service-desk = 服務櫃台人員
role-port-admin = 口岸管理員

## 登入
login-title = 登入
login-name = 用戶名稱
login-password = 密碼
login-submit = 登入
login-wrong = 用戶名稱或密碼錯誤。
login-paused = 連續 { $after } 次失敗後嘗試過多：登入已暫停。請稍候（每多嘗試一次等候更久，最多 { $minutes } 分鐘）再試，或請口岸管理員（用戶頁面）解除暫停。
login-disabled = 此帳戶已停用；請聯絡口岸管理員。
login-failed = 登入失敗；請再試。
login-expired = 工作階段已逾時；請重新登入。

## 警報列
queue-none = 警報：沒有未處理警報
queue-open = 警報：{ $count } 個未處理
sound-on = 聲響開啟（靜音）
sound-off = 聲響關閉（開啟）
no-alarms = 沒有警報。
since = 自 { $time } 起
acknowledge = 確認
acknowledged = 已確認
reason-short = 原因（必填）
release-reason = 放行原因（必填）
release-channel = 放行通道

## 警報類別
alarm-camera-down = 鏡頭故障
alarm-tailgating = 通道內有兩人
alarm-multiple-faces = 閘門前有多張面孔
alarm-authority-not-answering = 邊檢系統沒有回應
alarm-replica-stale = 資料副本過時
alarm-gate-fault = 閘門故障
alarm-gate-failed = 閘門未有執行指令，通關已停止
alarm-gate1-locked = 第一道閘門已鎖，旅客被拒
alarm-foreign-fence = 閘門控制器受其他裝置操控：須由技術人員重設
alarm-presentation-attack = 閘門一疑有偽冒攻擊（照片、螢幕或面具）
alarm-records-unwritable = 出入境紀錄無法儲存（磁碟已滿？）：暫停通關
alarm-held = 通道待人工處理
alarm-lane-offline = 通道離線
alarm-replication-lag = 資料同步延誤
alarm-order-refused = 指令未被執行
alarm-order-expired = 指令送達太遲
alarm-audit-divergence = 審計紀錄與其他副本不一致

## 狀態級別（大廳格及圖例）
severity-fault = 故障、離線或鏡頭故障
severity-held = 待人工處理
severity-passage = 通關中
severity-idle = 閒置
severity-not-deployed = 未部署

## 通道模式
mode-face-and-card = 刷臉＋刷證
mode-card-only = 只限刷證
mode-closed = 關閉
mode-offline = 離線
mode-not-deployed = 未部署

## 通關步驟
step-idle = 閒置，等候旅客
step-refused = 第一道閘門拒絕了旅客
step-declaration = 顯示登記聲明
step-registering = 旅客登記中
step-gate1-open = 第一道閘門開啟
step-inspection = 查驗中（雙方邊檢）
step-exit = 第二、三道閘門開啟，旅客離開中
step-officer = 待人工處理

## 口岸及大廳頁
ports-title = 口岸
hall-alarms = 本大廳警報（最新在前）
trend-title = 最近一小時（每分鐘，自本控制台啟動起）
trend-clearances = 通關 { $count } 人次
trend-p95 = 決定時間 p95：最差一分鐘 { $ms } 毫秒
trend-no-decisions = 沒有刷臉決定
grafana-open = 在 Grafana 開啟本大廳
grafana-none = 較長歷史：Grafana 儀表板 deploy/grafana/clearway-port.json（在控制台的 [[port]] 設定 dashboard_url 即可在此連結）。

## 通道頁
lane-state = 狀態
lane-desired-mode = 口岸要求的模式
lane-gates = 閘門
lane-step = 步驟
lane-face-scan = 刷臉
lane-face-scan-on = 使用中
lane-face-scan-off = 未使用
lane-pad = 活體檢測
lane-pad-enforce = 執行中
lane-pad-observe = 僅觀察：不執行
lane-pad-off = 關閉
lane-occupancy = 通道內人數
lane-held-for = 待人工處理
lane-cameras = 鏡頭
lane-last-decision = 最近決定
lane-fence = 防護令牌
lane-acked-order = 最近已執行的指令
lane-staleness = 副本延遲
lane-direction = 通關方向
lane-direction-unset = 口岸定義未設定
no = 否
none-yet = 暫無
alarms = 警報
cameras = 鏡頭
camera-reason = 查看鏡頭的原因（必填，會記入審計紀錄）
camera-show = 顯示鏡頭
camera-live = 即時畫面，每秒數張；本次查看為審計紀錄第 { $seq } 條。畫面不會儲存。
camera-ended = 查看已結束。如需再次查看，請填寫原因。
camera-gate = 第 { $n } 道閘門
camera-waiting = 等候第一張畫面…
override = 人工指令
overrides-recorded = 已記錄的人工指令
orders-when = 時間（口岸時間）
orders-order = 指令
orders-who = 由誰
orders-reason = 原因
orders-log = 日誌
risk-stop = 停止——任何時候均安全
risk-restore = 恢復——交回自動程序
risk-opens = 開閘或更改通道——須確認

## 服務櫃台
desk-title = 服務櫃台
desk-task-find = 查詢登記
desk-task-consent = 監護人同意
desk-task-cancel = 取消登記
desk-find = 查詢登記
desk-consent = 記錄監護人對未成年人（14至17歲）的同意
desk-cancel = 取消登記
desk-cancel-this = 取消此登記…
desk-locations = 服務地點

## 閘門及鏡頭
gate-state = 第 { $n } 道閘門：{ $state }
gate-closed = 關閉
gate-moving = 移動中
gate-open = 開啟
gate-locked = 已鎖
gate-fault = 故障
camera-up = 正常
camera-down = 故障

## 人工指令
override-gate1-open = 開啟第一道閘門
override-gate1-close = 關閉第一道閘門
override-gate1-lock = 鎖上第一道閘門
override-gate1-unlock = 解鎖第一道閘門
override-gate2-open = 開啟第二道閘門
override-gate2-close = 關閉第二道閘門
override-gate2-lock = 鎖上第二道閘門
override-gate2-unlock = 解鎖第二道閘門
override-gate3-open = 開啟第三道閘門
override-gate3-close = 關閉第三道閘門
override-gate3-lock = 鎖上第三道閘門
override-gate3-unlock = 解鎖第三道閘門
override-mode-face-and-card = 轉為刷臉＋刷證
override-mode-card-only = 轉為只限刷證
override-mode-closed = 轉為關閉
override-send-to-officer = 轉交人工處理
override-release = 放行通道

## 審計、用戶、口岸
filter-who = 由誰
filter-action = 動作
filter-target = 通道或人員
filter-when = 時間
audit-index = 日誌序號
audit-action = 動作
audit-target = 對象
audit-person = 人員
audit-outcome = 結果
audit-signed-by = 簽署者
audit-hash = 雜湊
audit-applied = 已執行
audit-refused = 已拒絕（{ $code }）
audit-title = 審計
audit-heading = { $port } 的審計紀錄
users-create = 新增用戶
users-name = 名稱
users-role = 角色
users-failed = 登入失敗次數
users-state = 狀態
users-active = 啟用中
users-disabled = 已停用
users-must-change = 須更改密碼
users-manage = 管理帳戶
users-action = 操作
users-apply = 執行
users-action-unlock = 解除登入暫停
users-action-disable = 停用
users-action-enable = 啟用
users-action-reset_password = 重設密碼
users-action-revoke_sessions = 結束所有工作階段
users-action-delete = 刪除
account-must-change = 管理員已設定你的密碼。請先選擇新密碼。
account-password = 更改密碼
account-current = 目前密碼
account-new = 新密碼（至少 12 個字元）
account-repeat = 再次輸入新密碼
account-change = 更改密碼
account-changed = 密碼已更改；你的其他工作階段已結束。
account-sessions = 你的工作階段
account-signed-in = 登入時間
account-last-seen = 最後請求
account-client = 來源
account-this-session = 此工作階段
account-revoke = 結束
console-audit-title = 控制台稽核記錄
console-audit-intact = 雜湊鏈完整：已驗證 { $count } 筆記錄。
console-audit-broken = 控制台稽核雜湊鏈在第 { $seq } 筆記錄中斷：{ $why }。自第 { $seq } 筆起的記錄不可信；請通報保安主任。
users-locked = 鎖定至
users-name-input = 名稱（a-z、0-9、. _ -）
users-ports-input = 口岸（督導人員；以逗號分隔）
users-password-input = 密碼（留空則自動產生，只顯示一次）
ports-port = 口岸
ports-halls = 大廳
ports-up = 在線通道
ports-down = 離線通道
ports-clearances = 每小時通關
ports-alarms = 未處理警報
ports-cluster = 集群

## 部署
roll-seeds = 種子節點
roll-origin = 來源
roll-from-def = 以定義檔建立口岸
roll-from-def-help = 與設備佈建所用的同一檔案（deploy/ports/<port>.toml）：其投票節點成為控制台的種子節點。
roll-choose-file = 選擇檔案
roll-preview = 預覽
roll-create-def = 建立口岸（產生其 CA）
roll-created = 已建立口岸：
roll-hall = 大廳
roll-channels = 通道
roll-voter = 投票節點
roll-address = 地址（QUIC）
roll-create = 建立口岸
roll-port-id = 口岸代號（a-z、0-9、-）
roll-offset = UTC 時差（分鐘）
roll-halls = 大廳，每行一個：代號 | 名稱 | 通道數
roll-seed-input = 種子節點（ID=IP:PORT，以逗號分隔）
roll-nodes = 節點：加入及追上進度
roll-bundles = 節點憑證包
roll-channel = 通道（通道節點：大廳/編號）
roll-csr = 簽署請求（在設備上：clearway-node port csr --node N --out tls；貼上 tls/request.csr）
roll-init = 初始化集群（投票節點：投票節點憑證包，否則種子節點）
roll-retire = 退役設備（撤銷其憑證並移出集群）
roll-stages = 分階段啟用刷臉
roll-pilot = 試點通道（大廳/編號，以逗號分隔）
roll-enable-pilot = 在試點通道啟用刷臉
roll-enable-all = 在所有通道啟用刷臉
roll-rollback = 回復：所有通道只限刷證

## 口岸狀態
port-hall-summary = { $channels } 條通道，{ $up } 條在線，{ $down } 條離線
port-status = 主節點 { $leader }，日誌序號 { $index }，最近一小時通關 { $clearances } 人次

## 服務櫃台表格、用戶
desk-locations-help = 未成年人（須監護人陪同）登記及取消登記，請親臨：
desk-location = 地點
desk-phone = 電話
desk-hours = 辦公時間
desk-number = 號碼
desk-find-submit = 查詢
desk-consent-help = 未成年人登記時不採集面容；之後如成年人一樣在通道完成登記。
desk-minor = 未成年人
desk-name-doc = 證件上的姓名
desk-dob = 出生日期
desk-category = 類別
desk-doc-number = 證件號碼
desk-document = 證件
desk-valid-from = 有效期由
desk-valid-until = 有效期至
desk-guardian = 父母或監護人
desk-guardian-doc = 身份證明文件（類別及號碼）
desk-proof = 關係證明（編號）
desk-service-location = 服務地點
desk-record-consent = 記錄同意
desk-cancel-help = 會在口岸每個副本上刪除此人資料。須親臨服務地點，出示登記所用的身份證件（與紀錄核對）；未成年人須由父母或監護人陪同並出示關係證明。請先查詢登記：查詢結果會連同人員編號連結到此處。
desk-cancel-in-person = 親臨服務地點辦理
desk-presented = 出示的身份證件
desk-cancel-guardian = 未成年人的父母或監護人（未成年人必填）
desk-person-id = 人員編號
desk-cancel-submit = 取消登記
desk-doc-valid-until = 證件有效期至
desk-registered-with = 已登記於
desk-status = 狀態
desk-cancel-done = 已確認：口岸每個副本均已執行取消並刪除資料。
desk-cancel-waiting = 等候每個副本執行取消並刪除資料…
desk-node = 節點
desk-applied-index = 已執行序號
desk-applied = 已執行
desk-erased = 已刪除
users-created = 已建立用戶 { $name }。
users-password-once = 密碼（只顯示一次）：
