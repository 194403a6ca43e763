# 闸门屏幕文字（简体中文）。

lang-name = 简体中文
service-name = 刷脸通关
choose-language = 语言
reminder = 请随身携带旅行证件原件，以备边检人员需要时查验。

## 第一道闸门
ready-face = 请摘下墨镜、口罩和帽子，面向摄像头；或出示旅行证件。
ready-card = 请出示旅行证件。
channel-closed = 本通道已关闭，请使用其他通道。
card-only = 刷脸通关暂停服务，请出示旅行证件。
one-at-a-time = 请逐一通过。
look-at-camera = 请看向摄像头。
face-prompt = 请摘下墨镜、口罩和帽子，面向摄像头。
not-recognised = 未能识别您的面部，请出示旅行证件。

## 无法使用刷脸通关的原因
face-unavailable = 您今天无法使用刷脸通关，请出示旅行证件或联系工作人员。
why-cancelled = 您的“刷脸通关”登记已被取消。
why-under-age = 刷脸通关适用于年满 { $age } 周岁的旅客。
why-document-not-accepted = 此旅行证件不适用于刷脸通关。
why-document-not-yet-valid = 您的旅行证件尚未生效。
why-document-expired = 您的旅行证件已过期。
why-document-not-five-year = 刷脸通关须持有效期五年的通行证。
why-endorsement-missing = 您的通行证没有签注。
why-endorsement-not-multiple-entry = 刷脸通关须持多次有效签注。
why-endorsement-not-yet-valid = 您的签注尚未生效。
why-endorsement-expired = 您的签注已过期。
why-not-registered-macao = 您尚未登记使用澳门的自助通关服务。
why-not-registered-mainland = 您尚未登记使用内地的自助通关服务。
why-fingerprint-authorisation-missing = 您尚未授权澳门当局读取您的指纹信息。
why-guardian-consent-missing = 须先由父母或监护人到服务点作出同意。
why-consent-missing-macao = 澳门当局没有您的“智能通关”登记记录。
why-consent-missing-mainland = 内地当局没有您的“智能通关”登记记录。
why-endorsement-not-accepted = 此类签注不能在本通道使用。
see-officer = 请联系工作人员。
document-unreadable = 未能读取您的旅行证件。
try-again-or-officer = 请再次将证件放在阅读器上，或联系工作人员。

## 登记
minor-needs-guardian = { $from } 至 { $to } 周岁的旅客登记前，须先由父母或监护人到服务点作出同意。
card-continues = 本次以刷证方式通关，请前往第二道闸门。
checking = 请稍候，正在核查您能否登记使用刷脸通关。
cannot-register = 您暂时不能登记使用刷脸通关。本次以刷证方式通关，请前往第二道闸门。
declaration-title = 登记使用“刷脸通关”？
declaration-text = 本人同意登记使用“刷脸通关”。本人的面部特征将被采集，本人的同意将同时传送至澳门及内地边检机关备案。本人下次通关起可以刷脸代替刷证。
agree = 同意
not-now = 暂不登记
registering = 正在登记，请面向摄像头。
registered = 登记完成。下次通关起可使用刷脸通关。
registration-failed = 未能完成登记。
registration-unavailable = 暂时无法办理刷脸通关登记。
registration-pending = 您的登记仍在记录中。

## 通关
welcome = 欢迎，请前往第二道闸门。
biometrics = 请面向摄像头，并将手指放在指纹采集器上。
fingerprint-retry = 请再次将手指放在指纹采集器上。
inspecting = 正在查验，请稍候。
cleared = 通关完成，祝您旅途愉快。

## 等候工作人员
wait-officer = 请在此稍候，工作人员将前来协助。
why-hold-one-at-a-time = 通道内每次只限一人。
why-hold-out-of-service = 本通道暂停服务。
why-hold-check = 您的通关需由工作人员核查。
