//! A deliberately simple stand-in for the clinical stage (`eval notes --fallback-analyzer`, a
//! baseline): transcript sections by cue words, entities by a small built-in term list with
//! longest match, traits by nearby cue words.

use std::collections::HashMap;

use crate::healthscribe::{
    ClinicalInsight, Conversation, EntitySubType, EntityType, InsightExtensions, InsightType, Span,
    Trait, TraitName, TranscriptSectionName,
};

/// `(category, type, term)` of the built-in list: common conversational clinical terms, written
/// by the team for the fallback analyzer. Not a terminology.
pub fn builtin_terms() -> impl Iterator<Item = (EntityType, EntitySubType, &'static str)> {
    BUILTIN_TERMS.iter().flat_map(|(cat, typ, list)| {
        list.split('|')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(move |t| (*cat, *typ, t))
    })
}

pub const BUILTIN_TERMS: &[(EntityType, EntitySubType, &str)] = &[
    (
        EntityType::MedicalCondition,
        EntitySubType::DxName,
        "pain|aches|ache|aching|headache|headaches|fever|fevers|chills|cough|coughing|nausea|\
         vomiting|diarrhea|constipation|fatigue|tired|tiredness|dizziness|dizzy|lightheaded|\
         lightheadedness|shortness of breath|short of breath|winded|wheezing|chest pain|\
         palpitations|swelling|swollen|rash|itching|itchy|numbness|numb|tingling|weakness|\
         stiffness|stiff|bleeding|bruising|anxiety|depression|insomnia|weight loss|weight gain|\
         sore throat|congestion|runny nose|sneezing|heartburn|reflux|acid reflux|burning|\
         cramping|cramps|bloating|incontinence|hypertension|high blood pressure|diabetes|\
         type 2 diabetes|type two diabetes|diabetes type 2|prediabetes|asthma|copd|emphysema|\
         arthritis|osteoarthritis|rheumatoid arthritis|gout|migraine|migraines|stroke|\
         heart attack|heart failure|congestive heart failure|atrial fibrillation|afib|cancer|\
         breast cancer|prostate cancer|kidney stone|kidney stones|kidney disease|infection|\
         pneumonia|covid|flu|influenza|cold|sinusitis|sinus infection|bronchitis|uti|\
         urinary tract infection|anemia|hypothyroidism|hyperthyroidism|high cholesterol|\
         hyperlipidemia|cholesterol|obesity|sleep apnea|fracture|sprain|strain|tear|injury|\
         edema|effusion|tenderness|tender|crepitus|murmur|murmurs|rhonchi|ronchi|crackles|rales|\
         erythema|redness|warmth|tendonitis|tendinitis|bursitis|neuropathy|seizure|seizures|\
         syncope|fainting|vertigo|tremor|concussion|laceration|abrasion|ulcer|polyps|hernia|\
         appendicitis|gallstones|pancreatitis|hepatitis|cirrhosis|lupus|psoriasis|eczema|acne|\
         allergies|seasonal allergies|viral syndrome|viral infection|upper respiratory infection|\
         sore|soreness|spasm|spasms|sciatica|back pain|knee pain|hip pain|joint pain|\
         muscle aches|body aches|dyspnea|nocturia|blurry vision|blurred vision|hematuria|\
         blood in the stool|blood in my stool|urinary frequency|frequent urination|\
         chest tightness|tightness|pressure|discomfort|irritation|inflammation|lump|mass|\
         nodule|cyst|wound|blister|bump|numbness and tingling|tingling and numbness|\
         osteoporosis|multiple sclerosis|ms|kidney transplant|transplant|rhinoplasty|\
         depressed|anxious|stress|panic attacks|adhd|bipolar|schizophrenia|ptsd|dementia|\
         memory loss|confusion|dehydration|hypoglycemia|hyperglycemia|neck pain|shoulder pain|\
         abdominal pain|stomach pain|belly pain|foot pain|wrist pain|elbow pain|ankle pain|\
         leg pain|arm pain|hand pain|carpal tunnel|plantar fasciitis|meniscus tear|acl tear|\
         rotator cuff tear|herniated disc|degenerative disc disease|spinal stenosis|\
         chronic kidney disease|ckd|coronary artery disease|cad|peripheral artery disease|\
         dvt|blood clot|pulmonary embolism|aneurysm|arrhythmia|bradycardia|tachycardia|\
         heart murmur|valve|kidney failure|liver disease|fatty liver|ibs|crohn's|colitis|\
         diverticulitis|gerd|ulcerative colitis|celiac|lactose intolerance|food poisoning",
    ),
    (
        EntityType::Medication,
        EntitySubType::GenericName,
        "lisinopril|metformin|ibuprofen|tylenol|acetaminophen|advil|motrin|aspirin|naproxen|\
         aleve|prednisone|amoxicillin|augmentin|azithromycin|z-pack|doxycycline|keflex|\
         cephalexin|ciprofloxacin|cipro|bactrim|albuterol|insulin|lantus|atorvastatin|lipitor|\
         simvastatin|crestor|rosuvastatin|pravastatin|statin|amlodipine|norvasc|losartan|\
         hydrochlorothiazide|hctz|metoprolol|carvedilol|lasix|furosemide|spironolactone|\
         omeprazole|prilosec|pantoprazole|protonix|nexium|pepcid|famotidine|gabapentin|\
         neurontin|lyrica|sertraline|zoloft|lexapro|escitalopram|fluoxetine|prozac|wellbutrin|\
         bupropion|celexa|citalopram|effexor|cymbalta|duloxetine|trazodone|xanax|ativan|\
         klonopin|levothyroxine|synthroid|warfarin|coumadin|eliquis|xarelto|plavix|robitussin|\
         mucinex|flonase|claritin|zyrtec|allegra|benadryl|sudafed|tramadol|oxycodone|norco|\
         percocet|hydrocodone|morphine|meloxicam|mobic|celebrex|flexeril|cyclobenzaprine|\
         muscle relaxant|steroid|steroids|antibiotic|antibiotics|inhaler|tiotropium|spiriva|\
         symbicort|advair|nicotine patch|ozempic|trulicity|jardiance|farxiga|januvia|glipizide|\
         humira|methotrexate|plaquenil|imuran|tacrolimus|prograf|cellcept|allopurinol|colchicine|\
         sumatriptan|imitrex|topamax|flomax|tamsulosin|finasteride|viagra|cialis|zofran|\
         ondansetron|miralax|colace|imodium|vitamin d|calcium|iron|b12|fish oil|multivitamin|\
         melatonin|epipen|nitroglycerin|digoxin|diltiazem|cardizem|entresto|jardiance|\
         lidocaine|cortisone|voltaren|diclofenac|antihistamine|nsaid|nsaids|birth control|\
         fosamax|alendronate|prolia|vaccine|flu shot|tetanus shot",
    ),
    (
        EntityType::TestTreatmentProcedure,
        EntitySubType::TestName,
        "x-ray|x-rays|xray|x ray|chest x-ray|mri|ct scan|cat scan|ct|ultrasound|ekg|ecg|\
         echocardiogram|echo|a1c|hemoglobin a1c|lipid panel|blood work|bloodwork|cbc|cmp|\
         urinalysis|urine culture|urine test|covid test|stress test|colonoscopy|mammogram|\
         biopsy|spirometry|blood pressure|heart rate|pulse|temperature|oxygen saturation|\
         oxygen level|vital signs|vitals|glucose|blood sugar|blood sugars|kidney function|\
         creatinine|potassium|sodium|thyroid|tsh|psa|pap smear|bone density|dexa scan|\
         holter monitor|event monitor|sleep study|pulmonary function test|nerve conduction|\
         emg|lab work|labs|strep test|culture|metabolic panel|liver function|troponin|\
         d-dimer|inr|platelets|white count|hemoglobin|cholesterol level",
    ),
    (
        EntityType::TestTreatmentProcedure,
        EntitySubType::ProcedureName,
        "surgery|injection|cortisone shot|steroid injection|knee replacement|hip replacement|\
         arthroscopy|appendectomy|cholecystectomy|hysterectomy|c-section|angioplasty|stent|\
         bypass|ablation|cardioversion|pacemaker|transplant|biopsy|stitches|sutures|\
         physical therapy|occupational therapy|therapy|psychotherapy|counseling|\
         brace|splint|cast|sling|crutches|ice|heat|stretching|exercises|referral",
    ),
    (
        EntityType::Anatomy,
        EntitySubType::SystemOrganSite,
        "head|neck|chest|back|lower back|upper back|abdomen|stomach|belly|arm|arms|elbow|elbows|\
         wrist|wrists|hand|hands|finger|fingers|thumb|shoulder|shoulders|hip|hips|knee|knees|\
         ankle|ankles|foot|feet|toe|toes|leg|legs|heart|lungs|lung|kidney|kidneys|liver|\
         throat|ear|ears|eye|eyes|skin|joint|joints|spine|calf|thigh|groin|pelvis|bladder|\
         colon|sinuses|nose|mouth|teeth|jaw|face|scalp|muscles|muscle|bone|bones|tendon|\
         ligament|ligaments|meniscus|lower extremities|extremities|lymph nodes",
    ),
    (
        EntityType::BehavioralEnvironmentalSocial,
        EntitySubType::TobaccoUse,
        "smoke|smoking|smoked|smoker|cigarettes|cigarette|tobacco|vape|vaping|chew",
    ),
    (
        EntityType::BehavioralEnvironmentalSocial,
        EntitySubType::AlcoholConsumption,
        "alcohol|drink|drinks|drinking|beer|beers|wine|liquor",
    ),
    (
        EntityType::BehavioralEnvironmentalSocial,
        EntitySubType::RecDrugUse,
        "marijuana|cocaine|drugs|recreational drugs",
    ),
];

/// A deliberately simple stand-in for the clinical stage, for evaluating the note stage before
/// the two are wired together: transcript sections by cue words, entities by a term list with
/// longest match, traits by nearby cue words. Report figures made with it as such.
#[derive(Debug, Clone)]
pub struct FallbackAnalyzer {
    terms: HashMap<String, Vec<(Vec<String>, EntityType, EntitySubType)>>,
}

const TO_OBJECTIVE: &[&str] = &[
    "physical exam",
    "exam",
    "examine",
    "vital signs",
    "vitals",
    "listen to your",
    "take a look",
    "let me look",
    "let me see",
    "look at your",
    "show me the",
    "results",
    "x-ray",
    "your labs",
    "reviewed",
    "press on",
    "blood pressure today",
];
const TO_PLAN: &[&str] = &[
    "assessment",
    "my plan",
    "the plan",
    "first problem",
    "diagnosis",
    "impression",
    "let's talk about",
    "so for your",
    "i want to start",
    "prescribe",
    "i'm going to order",
    "recommend",
    "next steps",
    "treatment",
    "what i think",
    "i believe",
    "it sounds like you have",
    "we'll start",
    "i'd like to start",
    "i'm gonna prescribe",
];

impl Default for FallbackAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

/// Word tokens with char offsets (alphanumerics, inner `'` and `-`).
fn words_with_offsets(s: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_alphanumeric() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || ((chars[i] == '\'' || chars[i] == '-')
                        && i + 1 < chars.len()
                        && chars[i + 1].is_alphanumeric()))
            {
                i += 1;
            }
            out.push((
                start,
                i,
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else {
            i += 1;
        }
    }
    out
}

impl FallbackAnalyzer {
    pub fn new() -> Self {
        let mut terms: HashMap<String, Vec<(Vec<String>, EntityType, EntitySubType)>> =
            HashMap::new();
        for (cat, typ, t) in builtin_terms() {
            let toks: Vec<String> = words_with_offsets(t).into_iter().map(|w| w.2).collect();
            if let Some(first) = toks.first() {
                terms
                    .entry(first.clone())
                    .or_default()
                    .push((toks, cat, typ));
            }
        }
        Self { terms }
    }

    /// Sets every segment's section and replaces the insights.
    pub fn analyze(&self, conv: &mut Conversation) {
        let mut state = TranscriptSectionName::Subjective;
        let n = conv.transcript_segments.len();
        let mut insights = Vec::new();
        let mut next_id = 0usize;
        for (k, seg) in conv.transcript_segments.iter_mut().enumerate() {
            let lower = seg.content.to_lowercase();
            let clinician = seg.participant_details.participant_role.role
                == crate::healthscribe::MedicalScribeParticipantRole::Clinician;
            // Sections move forward only: subjective → objective → assessment and plan.
            if clinician && k > n / 10 {
                if state != TranscriptSectionName::AssessmentAndPlan
                    && TO_PLAN.iter().any(|c| lower.contains(c))
                    && (state == TranscriptSectionName::Objective || k > n / 3)
                {
                    state = TranscriptSectionName::AssessmentAndPlan;
                } else if state == TranscriptSectionName::Subjective
                    && TO_OBJECTIVE.iter().any(|c| lower.contains(c))
                {
                    state = TranscriptSectionName::Objective;
                }
            }
            let words = words_with_offsets(&seg.content);
            let mut found = Vec::new();
            let mut i = 0;
            while i < words.len() {
                let best = self.terms.get(&words[i].2).and_then(|c| {
                    c.iter()
                        .filter(|(t, _, _)| {
                            words.len() - i >= t.len()
                                && t.iter().zip(&words[i..]).all(|(a, b)| *a == b.2)
                        })
                        .max_by_key(|(t, _, _)| t.len())
                });
                match best {
                    Some((t, cat, typ)) => {
                        found.push((i, i + t.len(), *cat, *typ));
                        i += t.len();
                    }
                    None => i += 1,
                }
            }
            let short = words.len() <= 4 && found.is_empty();
            seg.section_details.section_name = if short && k < n / 10 {
                TranscriptSectionName::Other
            } else {
                state
            };
            // Sentence bounds (char offsets) for trait cues.
            let chars: Vec<char> = seg.content.chars().collect();
            let sentence_of = |pos: usize| -> (usize, usize) {
                let mut a = pos;
                while a > 0 && !matches!(chars[a - 1], '.' | '?' | '!') {
                    a -= 1;
                }
                let mut b = pos;
                while b < chars.len() && !matches!(chars[b], '.' | '?' | '!') {
                    b += 1;
                }
                (a, b)
            };
            for (wa, wb, cat, typ) in found {
                let (cs, ce) = (words[wa].0, words[wb - 1].1);
                let Ok(span) = Span::from_char_range(seg.segment_id.clone(), &seg.content, cs, ce)
                else {
                    continue;
                };
                let (sa, sb) = sentence_of(cs);
                let sent_words: Vec<&(usize, usize, String)> =
                    words.iter().filter(|w| w.0 >= sa && w.1 <= sb).collect();
                let before: Vec<&str> = sent_words
                    .iter()
                    .filter(|w| w.1 <= cs)
                    .rev()
                    .take(5)
                    .map(|w| w.2.as_str())
                    .collect();
                let in_sentence =
                    |set: &[&str]| sent_words.iter().any(|w| set.contains(&w.2.as_str()));
                let mut traits = Vec::new();
                let t = |name| Trait { name, score: 0.5 };
                if cat == EntityType::MedicalCondition {
                    if before.iter().any(|w| {
                        crate::words::NEGATION_CUES_CONTRACTED.contains(w) || w.ends_with("n't")
                    }) {
                        traits.push(t(TraitName::Negation));
                    }
                    if in_sentence(crate::words::RELATIVES) {
                        traits.push(t(TraitName::PertainsToFamily));
                    }
                    if before
                        .iter()
                        .any(|w| matches!(*w, "if" | "case" | "whether"))
                    {
                        traits.push(t(TraitName::Hypothetical));
                    }
                    if in_sentence(&["history", "ago", "past"]) {
                        traits.push(t(TraitName::PastHistory));
                    }
                    traits.push(t(
                        if clinician && state == TranscriptSectionName::AssessmentAndPlan {
                            TraitName::Diagnosis
                        } else {
                            TraitName::Symptom
                        },
                    ));
                }
                insights.push(ClinicalInsight {
                    attributes: vec![],
                    category: cat,
                    insight_id: format!("fallback-{next_id}"),
                    insight_type: InsightType::ClinicalEntity,
                    spans: vec![span],
                    entity_type: typ,
                    extensions: Some(InsightExtensions {
                        traits,
                        codes: vec![],
                        score: Some(0.5),
                    }),
                });
                next_id += 1;
            }
        }
        conv.clinical_insights = insights;
    }
}
