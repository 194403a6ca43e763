# Textos dos ecrãs das portas, em português.

lang-name = Português
service-name = Passagem Fronteiriça Inteligente
choose-language = Idioma
reminder = Traga sempre consigo o documento de viagem original: os agentes de fronteira podem pedir para o ver.

## Primeira porta
ready-face = Retire os óculos de sol, a máscara e o chapéu e olhe para a câmara — ou apresente o seu documento de viagem.
ready-card = Apresente o seu documento de viagem, por favor.
channel-closed = Este canal está fechado. Utilize outro canal, por favor.
card-only = O reconhecimento facial não está disponível de momento. Apresente o seu documento de viagem.
one-at-a-time = Uma pessoa de cada vez, por favor.
look-at-camera = Por favor, olhe para a câmara.
face-prompt = Retire os óculos de sol, a máscara e o chapéu e olhe para a câmara.
not-recognised = O seu rosto não foi reconhecido. Apresente o seu documento de viagem.

## Porque não pode usar o reconhecimento facial hoje
face-unavailable = Hoje não pode passar por reconhecimento facial. Apresente o seu documento de viagem ou dirija-se a um agente.
why-cancelled = A sua inscrição na Passagem Fronteiriça Inteligente foi cancelada.
why-under-age = O reconhecimento facial destina-se a viajantes com { $age } ou mais anos de idade.
why-document-not-accepted = Este documento de viagem não pode ser usado no reconhecimento facial.
why-document-not-yet-valid = O seu documento de viagem ainda não é válido.
why-document-expired = O seu documento de viagem está caducado.
why-document-not-five-year = O reconhecimento facial exige um salvo-conduto válido por cinco anos.
why-endorsement-missing = O seu salvo-conduto não tem visto de saída.
why-endorsement-not-multiple-entry = O reconhecimento facial exige um visto de entradas múltiplas.
why-endorsement-not-yet-valid = O seu visto ainda não é válido.
why-endorsement-expired = O seu visto está caducado.
why-not-registered-macao = Não está inscrito no serviço de passagem automática de Macau.
why-not-registered-mainland = Não está inscrito no serviço de passagem automática do Interior da China.
why-fingerprint-authorisation-missing = Não autorizou as autoridades de Macau a ler os seus dados de impressões digitais.
why-guardian-consent-missing = Primeiro é necessário o consentimento dos pais ou do tutor, num posto de atendimento.
why-consent-missing-macao = A sua inscrição na Passagem Inteligente não está registada junto das autoridades de Macau.
why-consent-missing-mainland = A sua inscrição na Passagem Inteligente não está registada junto das autoridades do Interior da China.
why-endorsement-not-accepted = Este tipo de endosso não pode ser usado neste canal.
see-officer = Dirija-se a um agente, por favor.
document-unreadable = Não foi possível ler o seu documento de viagem.
try-again-or-officer = Coloque-o novamente no leitor ou dirija-se a um agente.

## Inscrição
minor-needs-guardian = Para se inscrever, um viajante dos { $from } aos { $to } anos precisa primeiro do consentimento dos pais ou do tutor, dado num posto de atendimento.
card-continues = Desta vez passa pela leitura do documento: avance para a segunda porta.
checking = Um momento, por favor: a verificar se se pode inscrever no reconhecimento facial.
cannot-register = Ainda não se pode inscrever no reconhecimento facial. Desta vez passa pela leitura do documento: avance para a segunda porta.
declaration-title = Inscrever-se na Passagem Fronteiriça Inteligente?
declaration-text = Aceito inscrever-me na Passagem Fronteiriça Inteligente. As minhas características faciais serão recolhidas e o meu consentimento será transmitido em simultâneo às autoridades de inspecção fronteiriça de Macau e do Interior da China, para registo. A partir da próxima viagem posso passar por reconhecimento facial em vez da leitura do documento.
agree = Concordo
not-now = Agora não
registering = A inscrever… Olhe para a câmara, por favor.
registered = Inscrição concluída. Pode usar o reconhecimento facial a partir da próxima viagem.
registration-failed = Não foi possível concluir a inscrição.
registration-unavailable = A inscrição no reconhecimento facial não está disponível de momento.
registration-pending = A sua inscrição ainda está a ser registada.

## A passagem
welcome = Bem-vindo. Avance para a segunda porta.
biometrics = Olhe para a câmara e coloque o dedo no leitor.
fingerprint-retry = Coloque novamente o dedo no leitor.
inspecting = Inspecção em curso. Aguarde, por favor.
cleared = Passagem concluída. Boa viagem.

## À espera de um agente
wait-officer = Aguarde aqui, por favor. Um agente virá ajudá-lo.
why-hold-one-at-a-time = Só pode estar uma pessoa de cada vez no canal.
why-hold-out-of-service = Este canal está fora de serviço.
why-hold-check = A sua passagem precisa da verificação de um agente.
