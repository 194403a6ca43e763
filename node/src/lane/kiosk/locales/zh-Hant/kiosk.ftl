# 閘門屏幕文字（繁體中文）。

lang-name = 繁體中文
service-name = 刷臉通關
choose-language = 語言
reminder = 請隨身攜帶旅行證件正本，以備邊檢人員需要時查驗。

## 第一道閘門
ready-face = 請除下太陽眼鏡、口罩及帽子，面向鏡頭；或出示旅行證件。
ready-card = 請出示旅行證件。
channel-closed = 本通道已關閉，請使用其他通道。
card-only = 刷臉通關暫停服務，請出示旅行證件。
one-at-a-time = 請逐一通過。
look-at-camera = 請看向攝像頭。
face-prompt = 請除下太陽眼鏡、口罩及帽子，面向鏡頭。
not-recognised = 未能識別您的面容，請出示旅行證件。

## 未能使用刷臉通關的原因
face-unavailable = 您今天未能使用刷臉通關，請出示旅行證件或聯絡工作人員。
why-cancelled = 您的「刷臉通關」登記已被取消。
why-under-age = 刷臉通關適用於年滿 { $age } 歲的旅客。
why-document-not-accepted = 此旅行證件不適用於刷臉通關。
why-document-not-yet-valid = 您的旅行證件尚未生效。
why-document-expired = 您的旅行證件已過期。
why-document-not-five-year = 刷臉通關須持有效期五年的通行證。
why-endorsement-missing = 您的通行證沒有簽注。
why-endorsement-not-multiple-entry = 刷臉通關須持多次有效簽注。
why-endorsement-not-yet-valid = 您的簽注尚未生效。
why-endorsement-expired = 您的簽注已過期。
why-not-registered-macao = 您尚未登記使用澳門的自助通關服務。
why-not-registered-mainland = 您尚未登記使用內地的自助通關服務。
why-fingerprint-authorisation-missing = 您尚未授權澳門當局讀取您的指紋資料。
why-guardian-consent-missing = 須先由父母或監護人到服務地點作出同意。
why-consent-missing-macao = 澳門當局沒有您的「智能通關」登記紀錄。
why-consent-missing-mainland = 內地當局沒有您的「智能通關」登記紀錄。
why-endorsement-not-accepted = 此類簽注不能在本通道使用。
see-officer = 請聯絡工作人員。
document-unreadable = 未能讀取您的旅行證件。
try-again-or-officer = 請再次將證件放在閱讀器上，或聯絡工作人員。

## 登記
minor-needs-guardian = { $from } 至 { $to } 歲的旅客登記前，須先由父母或監護人到服務地點作出同意。
card-continues = 本次以刷證方式通關，請前往第二道閘門。
checking = 請稍候，正在查核您可否登記使用刷臉通關。
cannot-register = 您暫時未能登記使用刷臉通關。本次以刷證方式通關，請前往第二道閘門。
declaration-title = 登記使用「刷臉通關」？
declaration-text = 本人同意登記使用「刷臉通關」。本人的面部特徵將被採集，本人的同意將同時傳送至澳門及內地邊檢機關備案。本人下次通關起可以刷臉代替刷證。
agree = 同意
not-now = 暫不登記
registering = 正在登記，請面向鏡頭。
registered = 登記完成。下次通關起可使用刷臉通關。
registration-failed = 未能完成登記。
registration-unavailable = 暫時未能辦理刷臉通關登記。
registration-pending = 您的登記仍在記錄中。

## 通關
welcome = 歡迎，請前往第二道閘門。
biometrics = 請面向鏡頭，並將手指放在指紋採集器上。
fingerprint-retry = 請再次將手指放在指紋採集器上。
inspecting = 正在查驗，請稍候。
cleared = 通關完成，祝旅途愉快。

## 等候工作人員
wait-officer = 請在此稍候，工作人員將前來協助。
why-hold-one-at-a-time = 通道內每次只限一人。
why-hold-out-of-service = 本通道暫停服務。
why-hold-check = 您的通關須由工作人員核查。
